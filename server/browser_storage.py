"""``GET /api/storage``: the name of the signed-in user's own browser storage, for the engine's uploads.

One browser profile may be used by several people signing in to the host in turn, and the engine (one worker per
origin) keeps uploads in that profile's storage. So the engine keeps each user's uploads in a folder of their own,
named by this key, and shows and sends only the folder of whoever is signed in now (browser_py/engine/owner.py).
The key is an HMAC of the owner with a key derived from the server's secret: stable for a user, unguessable for
anyone else, and it reveals no user id or email to whoever reads the profile's storage.

Anonymous identities (``IDENTITY_MODE=anonymous``) are a cookie per profile: one profile, one user, so their key is
"" (the profile's shared folder, where uploads always were; a lost cookie must not hide its uploads). Nobody signed in
to the host answers 401, as every API call does.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from server.identity import identify
from server.tokens import Purpose, derive_key

router = APIRouter(tags=["account"])

#: Hex characters of a key: 128 bits.
KEY_LENGTH = 32


class StorageKeys:
    """Makes the storage key of an owner."""

    def __init__(self, secret_key: str) -> None:
        self._key = derive_key(secret_key, Purpose.BROWSER_STORAGE)

    def of(self, owner: str) -> str:
        return hmac.new(self._key, owner.encode(), hashlib.sha256).hexdigest()[:KEY_LENGTH]


def get_storage_keys(request: Request) -> StorageKeys:
    keys: StorageKeys = request.app.state.storage_keys
    return keys


class BrowserStorage(BaseModel):
    #: The folder name of the signed-in user's uploads in this browser; "" for the profile's shared one.
    key: str


@router.get("/api/storage", response_model=BrowserStorage)
def browser_storage(
    request: Request, response: Response, keys: Annotated[StorageKeys, Depends(get_storage_keys)]
) -> BrowserStorage:
    """Asked by the engine on each page hello and card action: it changes when someone else signs in."""
    response.headers["Cache-Control"] = "no-store"
    principal = identify(request)  # a host's "nobody" raises 401; an anonymous visitor without a cookie is None
    return BrowserStorage(key=keys.of(principal.owner) if principal is not None and principal.from_host else "")
