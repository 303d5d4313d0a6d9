"""Anonymous identity: a random user id in an HMAC-signed cookie, issued on first contact.

There are no accounts; the cookie only keeps one browser's uploads apart from another's. A missing or forged cookie
gets a fresh id, so forging one never reaches anybody else's sessions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from itsdangerous import BadSignature, Signer

COOKIE_NAME = "uid"
#: Browsers cap cookie lifetimes at 400 days.
COOKIE_MAX_AGE = 400 * 24 * 3600


class Identity:
    """Signs and checks ``uid`` cookie values."""

    def __init__(self, secret_key: str, *, secure: bool = False) -> None:
        self._signer = Signer(secret_key, salt="smartcat.identity.uid")
        self._uploads = Signer(secret_key, salt="smartcat.upload.token")
        self.secure = secure

    def upload_token(self, session_id: str) -> str:
        """A capability for one upload session, kept by the client beside its resume state.

        Browsers write cookies to disk lazily: after a crash the identity cookie may be gone while the staged file
        and manifest survived. The token lets that client resume its own upload; it grants nothing else.
        """
        return self._uploads.sign(session_id).decode("ascii")

    def grants(self, token: str | None, session_id: str) -> bool:
        if not token:
            return False
        try:
            return self._uploads.unsign(token).decode("ascii") == session_id
        except (BadSignature, UnicodeDecodeError):
            return False

    def new_user(self) -> tuple[str, str]:
        """Return a fresh ``(user_id, cookie_value)``."""
        user_id = secrets.token_urlsafe(16)
        return user_id, self._signer.sign(user_id).decode("ascii")

    def user_of(self, cookie_value: str | None) -> str | None:
        """The user id in a cookie value, or None when it is absent or its signature does not hold."""
        if not cookie_value:
            return None
        try:
            return self._signer.unsign(cookie_value).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None

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


def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


def current_user(request: Request, response: Response, identity: Annotated[Identity, Depends(get_identity)]) -> str:
    """The caller's user id; a caller without a valid cookie becomes a new user (cookie set on the response)."""
    user_id = identity.user_of(request.cookies.get(COOKIE_NAME))
    if user_id is None:
        user_id, cookie_value = identity.new_user()
        identity.set_cookie(response, cookie_value)
    return user_id


CurrentUser = Annotated[str, Depends(current_user)]

UPLOAD_TOKEN_HEADER = "X-Upload-Token"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks about an upload session: a user (cookie) and possibly the session's own upload token."""

    user_id: str
    upload_token: str | None
    identity: Identity

    def may_use(self, owner_id: str, session_id: str) -> bool:
        return owner_id == self.user_id or self.identity.grants(self.upload_token, session_id)


def caller(
    user_id: CurrentUser,
    identity: Annotated[Identity, Depends(get_identity)],
    upload_token: Annotated[str | None, Header(alias=UPLOAD_TOKEN_HEADER)] = None,
) -> Caller:
    return Caller(user_id, upload_token, identity)


SessionCaller = Annotated[Caller, Depends(caller)]
