"""Who is calling: a :class:`Principal` (tenant, user, roles), from the host's JWT or an anonymous cookie.

``IDENTITY_MODE=jwt`` (behind Smartcat's login): the host application issues a JWT, sent as ``Authorization: Bearer``
or in a cookie; :mod:`server.host_tokens` verifies it, and a request without a valid one is answered 401.

``IDENTITY_MODE=anonymous`` (the embedded demo): a random user id in an HMAC-signed cookie, issued on first contact.
It only keeps one browser's uploads apart from another's; a missing or forged cookie gets a fresh id, so forging one
never reaches anybody else's sessions.

Everything a user owns (sessions, files, profile, subscriptions, notifications) is keyed by :attr:`Principal.owner`,
one string that encodes (tenant, user) injectively.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Header, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from server import logs
from server.host_tokens import HostTokenVerifier, InvalidHostToken
from server.ratelimit import RateLimits, client_address
from server.tokens import Purpose, TokenSigner, Verified

COOKIE_NAME = "uid"
#: Browsers cap cookie lifetimes at 400 days; the signed value expires with it.
COOKIE_MAX_AGE = 400 * 24 * 3600
#: A cookie in use is re-signed once it is this old.
COOKIE_RENEW_AFTER = timedelta(days=1)


class Identity:
    """Signs and checks anonymous ``uid`` cookie values and upload tokens, each with its own key and maximum age."""

    def __init__(self, secret_key: str, *, secure: bool = False, upload_token_max_age: int = COOKIE_MAX_AGE) -> None:
        self._cookies = TokenSigner(secret_key, Purpose.IDENTITY, COOKIE_MAX_AGE)
        self._uploads = TokenSigner(secret_key, Purpose.UPLOAD, upload_token_max_age)
        self.secure = secure

    def upload_token(self, session_id: str) -> str:
        """A capability for one upload session, kept by the client beside its resume state.

        Browsers write cookies to disk lazily: after a crash the identity cookie may be gone while the staged file
        and manifest survived. The token lets that client resume its own upload; it grants nothing else, and expires
        with the session's maximum age.
        """
        return self._uploads.sign(session_id)

    def grants(self, token: str | None, session_id: str) -> bool:
        verified = self._uploads.verify(token)
        return verified is not None and verified.value == session_id

    def new_user(self) -> tuple[str, str]:
        """Return a fresh ``(user_id, cookie_value)``."""
        user_id = secrets.token_urlsafe(16)
        return user_id, self._cookies.sign(user_id)

    def user_of(self, cookie_value: str | None) -> str | None:
        """The user id in a cookie value, or None when it is absent, its signature does not hold, or it is too old."""
        verified = self._cookie(cookie_value)
        return verified.value if verified else None

    def _cookie(self, cookie_value: str | None) -> Verified | None:
        return self._cookies.verify(cookie_value)

    def renewal(self, cookie_value: str | None) -> str | None:
        """A fresh cookie value for a valid cookie signed more than a day ago (so an active user's cookie never
        reaches its maximum age), else None."""
        verified = self._cookie(cookie_value)
        # Measured on the signer's clock (time.time), which dated the cookie.
        if verified is None or time.time() - verified.issued_at.timestamp() < COOKIE_RENEW_AFTER.total_seconds():
            return None
        return self._cookies.sign(verified.value)

    def set_cookie(self, response: Response, cookie_value: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            cookie_value,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: ``tenant`` is "" for anonymous users and single-tenant hosts."""

    user: str
    tenant: str = ""
    roles: frozenset[str] = frozenset()
    is_admin: bool = False
    #: Identified by the host application (a verified JWT), not an anonymous cookie.
    from_host: bool = False

    @property
    def owner(self) -> str:
        """The key of everything this principal owns. Anonymous ids are URL-safe base64 (no ``:``); host ids are
        ``h:<tenant>:<user>`` percent-encoded, so no two (tenant, user) pairs, and no host and anonymous user, share
        a key."""
        if not self.from_host:
            return self.user
        return f"h:{quote(self.tenant, safe='')}:{quote(self.user, safe='')}"


def _identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


async def get_identity(request: Request) -> Identity:
    """The app's identity keys (an ``async`` dependency: no thread hand-off, see :mod:`server.dependencies`)."""
    return _identity(request)


def _host_token(request: Request, cookie_name: str) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(cookie_name) or None


#: A host application's own way of saying who is calling (``create_app(identify=...)``): the signed-in user as a
#: principal, or None (answered 401: the page says "sign in again"). It may raise its own ``HTTPException``.
HostIdentify = Callable[[Request], "Principal | None"]


def identify(request: Request) -> Principal | None:
    """The caller, or None when it has no valid identity (an anonymous visitor without a cookie: see
    :func:`current_principal`). In JWT mode an invalid token raises 401. A host that mounts the uploader with its
    own identity function (:data:`HostIdentify`) decides instead."""
    host_identify: HostIdentify | None = getattr(request.app.state, "host_identify", None)
    if host_identify is not None:
        principal = host_identify(request)
        if principal is None:
            raise _unauthorized("not signed in to the host application")
        # Host users never share an owner key with anonymous ones, whatever the host's function says.
        return replace(principal, from_host=True)
    verifier: HostTokenVerifier | None = request.app.state.host_tokens
    if verifier is None:
        identity = _identity(request)
        user_id = identity.user_of(request.cookies.get(COOKIE_NAME))
        return Principal(user=user_id) if user_id is not None else None
    token = _host_token(request, request.app.state.settings.jwt_cookie_name)
    if token is None:
        raise _unauthorized("no token from the host application")
    try:
        claims = verifier.verify(token)
    except InvalidHostToken as error:
        raise _unauthorized(str(error)) from error
    admin_role = request.app.state.settings.jwt_admin_role
    return Principal(
        user=claims.user, tenant=claims.tenant, roles=claims.roles, is_admin=admin_role in claims.roles, from_host=True
    )


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        f"sign in again: {reason}",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def current_principal(request: Request, response: Response) -> Principal:
    """The caller; an anonymous caller without a valid cookie becomes a new user (cookie set on the response), at
    most ``RATE_LIMIT_NEW_IDENTITY`` per client address.

    Reading an anonymous cookie is HMAC work only and runs on the event loop; what may block (a host's identify
    function, a JWKS fetch, the new-identity counter in a shared store) runs on a worker thread (see
    :mod:`server.blocking`)."""
    on_loop = request.app.state.host_tokens is None and getattr(request.app.state, "host_identify", None) is None
    principal = identify(request) if on_loop else await run_in_threadpool(identify, request)
    if principal is None:
        principal = await run_in_threadpool(_new_user, request, response)
    elif not principal.from_host:
        identity = _identity(request)
        renewed = identity.renewal(request.cookies.get(COOKIE_NAME))
        if renewed is not None:
            identity.set_cookie(response, renewed)
    logs.bind_user(principal.owner)
    return principal


def _new_user(request: Request, response: Response) -> Principal:
    rate_limits: RateLimits = request.app.state.rate_limits
    rate_limits.hit("new identities", rate_limits.new_identity, f"addr:{client_address(request)}")
    user_id, cookie_value = _identity(request).new_user()
    _identity(request).set_cookie(response, cookie_value)
    return Principal(user=user_id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_user(principal: CurrentPrincipal) -> str:
    """The caller's owner key (see :attr:`Principal.owner`)."""
    return principal.owner


CurrentUser = Annotated[str, Depends(current_user)]

UPLOAD_TOKEN_HEADER = "X-Upload-Token"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks about an upload session: a principal and possibly the session's own upload token."""

    principal: Principal
    upload_token: str | None
    identity: Identity

    @property
    def user_id(self) -> str:
        return self.principal.owner

    def may_use(self, owner_id: str, session_id: str) -> bool:
        """The owner may; so may an anonymous client holding the session's upload token (its cookie was lost in a
        crash). A host-identified caller must be the owner: the host, not a token, says who it is."""
        if owner_id == self.principal.owner:
            return True
        return not self.principal.from_host and self.identity.grants(self.upload_token, session_id)


async def caller(
    principal: CurrentPrincipal,
    identity: Annotated[Identity, Depends(get_identity)],
    upload_token: Annotated[str | None, Header(alias=UPLOAD_TOKEN_HEADER)] = None,
) -> Caller:
    return Caller(principal, upload_token, identity)


SessionCaller = Annotated[Caller, Depends(caller)]
