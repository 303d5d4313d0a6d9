"""``/api/profile`` and ``/api/notifications``: what the page needs to offer push and email, and ``/sw.js``.

The Service Worker is served from the root, not ``/static``, because a worker's scope can only cover paths under
its own URL: at ``/sw.js`` it receives pushes for the whole app and can open ``/files/<id>``.
"""

from __future__ import annotations

import binascii
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from server.dependencies import DbSession, SettingsDep
from server.identity import CurrentUser
from server.models import PushSubscription, UserProfile
from server.notify.keys import b64url_decode
from server.notify.service import NotificationsDep
from server.notify.webpush import endpoint_allowed

router = APIRouter(tags=["notifications"])

#: Deliberately loose (the mail server has the last word) but one address, no spaces, no header tricks.
EMAIL_PATTERN = r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\.]+(\.[^@\s<>,;:\"()\[\]\\.]+)+$"


class ProfileView(BaseModel):
    email: str | None = Field(description="Where completion emails go; null: none given.")
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
        email_notifications=profile.email_notifications if profile else True,
        push_notifications=profile.push_notifications if profile else True,
        push_subscriptions=count,
    )


@router.get("/api/profile", response_model=ProfileView)
def get_profile(owner: CurrentUser, db: DbSession) -> ProfileView:
    """What the page prefills the email offer with."""
    return _profile_view(db, owner)


@router.put("/api/profile", response_model=ProfileView)
def update_profile(body: ProfileUpdate, owner: CurrentUser, db: DbSession) -> ProfileView:
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
    return _profile_view(db, owner)


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
