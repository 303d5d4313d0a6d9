"""``/api/profile`` and ``/api/notifications``: what the page needs to offer push and email, and ``/sw.js``.

The Service Worker is served from the root, not ``/static``, because a worker's scope can only cover paths under
its own URL: at ``/sw.js`` it receives pushes for the whole app and can open ``/files/<id>``.
"""

from __future__ import annotations

import binascii
from html import escape
from typing import Annotated
from urllib.parse import parse_qs

import anyio
import anyio.from_thread
import anyio.to_thread
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from server.db import Database
from server.dependencies import DbSession, SettingsDep, get_database
from server.identity import CurrentUser
from server.models import PushSubscription, UserProfile
from server.notify.confirmation import CONFIRM_API, CONFIRM_PAGE
from server.notify.keys import b64url_decode
from server.notify.notifier import SendError
from server.notify.service import NotificationsDep, NotificationService
from server.notify.webpush import endpoint_allowed
from server.proxy import url_prefix
from server.ratelimit import RateLimits, RateLimitsDep
from server.routers.files import html_page

router = APIRouter(tags=["notifications"])
DatabaseDep = Annotated[Database, Depends(get_database)]
_EXPIRED = "<h1>This link has expired</h1><p>Enter your address again to get a new one.</p>"

#: Deliberately loose (the mail server has the last word) but one address, no spaces, no header tricks.
EMAIL_PATTERN = r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\.]+(\.[^@\s<>,;:\"()\[\]\\.]+)+$"


class ProfileView(BaseModel):
    email: str | None = Field(description="Where completion emails go; null: none given.")
    email_confirmed: bool = Field(
        description="The owner opened the confirmation link sent to the address; no mail goes out before."
    )
    email_notifications: bool
    push_notifications: bool
    push_subscriptions: int = Field(description="Browsers of this user that can receive pushes.")


class ProfileUpdate(BaseModel):
    """Fields left out stay as they are; ``email: null`` (or ``""``) forgets the address."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    email_notifications: bool | None = None
    push_notifications: bool | None = None

    @field_validator("email", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(max_length=128)
    auth: str = Field(max_length=64)


class SubscriptionIn(BaseModel):
    """``PushSubscription.toJSON()`` as the browser gives it."""

    endpoint: str = Field(max_length=2048)
    keys: SubscriptionKeys
    expirationTime: float | None = None


class SubscriptionView(BaseModel):
    endpoint: str
    created: bool


class PublicKeyView(BaseModel):
    public_key: str = Field(description="VAPID public key (base64url, uncompressed P-256): applicationServerKey.")


def _profile_view(db: DbSession, user_id: str) -> ProfileView:
    profile = db.get(UserProfile, user_id)
    count = db.scalar(select(func.count()).where(PushSubscription.user_id == user_id)) or 0
    return ProfileView(
        email=profile.email if profile else None,
        email_confirmed=bool(profile and profile.email and profile.email == profile.confirmed_email),
        email_notifications=profile.email_notifications if profile else True,
        push_notifications=profile.push_notifications if profile else True,
        push_subscriptions=count,
    )


@router.get("/api/profile", response_model=ProfileView)
def get_profile(owner: CurrentUser, db: DbSession) -> ProfileView:
    """What the page prefills the email offer with."""
    return _profile_view(db, owner)


@router.put("/api/profile", response_model=ProfileView)
def update_profile(
    body: ProfileUpdate,
    owner: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
    notifications: NotificationsDep,
    rate_limits: RateLimitsDep,
) -> ProfileView:
    """Change the profile; a new email address is sent a confirmation link (nothing else goes to it before)."""
    profile = db.get(UserProfile, owner)
    if profile is None:
        profile = UserProfile(user_id=owner, email_notifications=True, push_notifications=True)
        db.add(profile)
    given = body.model_fields_set
    if "email" in given:
        profile.email = body.email
    if body.email_notifications is not None:
        profile.email_notifications = body.email_notifications
    if body.push_notifications is not None:
        profile.push_notifications = body.push_notifications
    db.commit()
    email = profile.email
    if "email" in given and email and email != profile.confirmed_email and settings.email_confirmation_required:
        _send_confirmation(notifications, rate_limits, owner, email)
    return _profile_view(db, owner)


def _send_confirmation(notifications: NotificationService, rate_limits: RateLimits, owner: str, email: str) -> None:
    """Mail the confirmation link, at most ``RATE_LIMIT_CONFIRMATION_EMAIL`` per user and per address."""
    rate_limits.hit("confirmation emails", rate_limits.confirmation_email, f"user:{owner}", f"mail:{email.lower()}")
    sender = notifications.email
    if sender is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "email is not running; retry shortly")
    try:
        anyio.from_thread.run(sender.send_confirmation, email, notifications.confirmations.link(owner, email))
    except SendError as error:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, f"the confirmation email could not be sent; try again later ({error})"
        ) from error


@router.get(CONFIRM_PAGE, response_class=HTMLResponse, include_in_schema=False)
def confirm_email_page(
    request: Request, notifications: NotificationsDep, token: Annotated[str | None, Query(max_length=2048)] = None
) -> HTMLResponse:
    """What the link in the confirmation email opens: a button (a link fetched by a mail scanner confirms nothing)."""
    confirmation = notifications.confirmations.verify(token)
    if confirmation is None or token is None:
        return html_page(
            request,
            "Link expired", "<h1>This link has expired</h1><p>Enter your address again to get a new one.</p>", 400
        )
    body = (
        f"<h1>Confirm your email</h1><p>Send upload notifications to <strong>{escape(confirmation.email)}</strong>?</p>"
        f'<form method="post" action="{escape(url_prefix(request.scope))}{CONFIRM_API}">'
        f'<input type="hidden" name="token" value="{escape(token)}">'
        '<button type="submit">Confirm</button></form>'
    )
    return html_page(request, "Confirm your email", body)


@router.post(CONFIRM_API, response_class=HTMLResponse, include_in_schema=False)
async def confirm_email(request: Request, notifications: NotificationsDep, database: DatabaseDep) -> HTMLResponse:
    """The confirm button: the address becomes the one completion emails go to, if it still is the profile's."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    confirmation = notifications.confirmations.verify(next(iter(form.get("token", [])), None))
    if confirmation is None:
        return html_page(
            request,
            "Link expired", "<h1>This link has expired</h1><p>Enter your address again to get a new one.</p>", 400
        )
    confirmed = await anyio.to_thread.run_sync(_confirm, database, confirmation.owner, confirmation.email)
    if not confirmed:
        return html_page(
            request,
            "Address changed", "<h1>This address is no longer in your profile</h1><p>Nothing was changed.</p>", 409
        )
    return html_page(
        request,
        "Email confirmed",
        f"<h1>Email confirmed</h1><p>Upload notifications will go to "
        f"<strong>{escape(confirmation.email)}</strong>.</p>",
    )


def _confirm(database: Database, owner: str, email: str) -> bool:
    with database.sessions() as db:
        profile = db.get(UserProfile, owner)
        if profile is None or profile.email != email:
            return False
        profile.confirmed_email = email
        db.commit()
        return True


@router.get("/api/notifications/vapid-public-key", response_model=PublicKeyView)
def vapid_public_key(notifications: NotificationsDep, response: Response) -> PublicKeyView:
    response.headers["Cache-Control"] = "no-cache"
    return PublicKeyView(public_key=notifications.vapid.public_key)


def _check_key(value: str, length: int, what: str) -> None:
    try:
        raw = b64url_decode(value)
    except (binascii.Error, ValueError) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what} is not base64url") from error
    if len(raw) != length:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what} must be {length} bytes")
    if what == "keys.p256dh":
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "keys.p256dh is not a P-256 point") from error


@router.post("/api/notifications/push-subscriptions", response_model=SubscriptionView)
def save_push_subscription(
    body: SubscriptionIn, owner: CurrentUser, db: DbSession, settings: SettingsDep
) -> SubscriptionView:
    """Remember where this browser receives pushes (re-posting the same endpoint updates it)."""
    if not endpoint_allowed(body.endpoint, settings.push_allowed_hosts):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "endpoint is not a known push service (see PUSH_ALLOWED_HOSTS)"
        )
    _check_key(body.keys.p256dh, 65, "keys.p256dh")
    _check_key(body.keys.auth, 16, "keys.auth")
    for _ in range(2):
        row = db.scalar(select(PushSubscription).where(PushSubscription.endpoint == body.endpoint))
        created = row is None
        if row is None:
            row = PushSubscription(endpoint=body.endpoint, user_id=owner, p256dh=body.keys.p256dh, auth=body.keys.auth)
            db.add(row)
        else:
            # The endpoint is the browser's: whoever posts it last (this browser's current user) owns it.
            row.user_id, row.p256dh, row.auth, row.last_error = owner, body.keys.p256dh, body.keys.auth, None
        try:
            db.commit()
        except IntegrityError:
            db.rollback()  # another request inserted the same endpoint just now: update that one
            continue
        return SubscriptionView(endpoint=body.endpoint, created=created)
    raise HTTPException(status.HTTP_409_CONFLICT, "subscription changed concurrently; retry")


@router.delete("/api/notifications/push-subscriptions", status_code=status.HTTP_204_NO_CONTENT)
def delete_push_subscription(
    endpoint: Annotated[str, Query(max_length=2048)], owner: CurrentUser, db: DbSession
) -> None:
    """Forget one of the caller's subscriptions (idempotent)."""
    db.execute(delete(PushSubscription).where(PushSubscription.endpoint == endpoint, PushSubscription.user_id == owner))
    db.commit()


@router.api_route("/sw.js", methods=["GET", "HEAD"], include_in_schema=False)
def service_worker(settings: SettingsDep) -> FileResponse:
    path = settings.web_dir / "sw.js"
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sw.js in {settings.web_dir}")
    # Browsers check for a new worker on navigation; no-cache makes that check see a deploy at once.
    return FileResponse(
        path,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )
