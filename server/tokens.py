"""Signed tokens: one derived key per purpose, a timestamp in every token, and a maximum age for each.

The master secret (``SECRET_KEY`` or ``DATA_DIR/secret_key``) never signs anything itself: each purpose (identity
cookie, upload token, file link, email confirmation) signs with its own key derived by HKDF-SHA256, so a token made
for one purpose is worthless for another, and a leak of one derived key exposes no other. Tokens are itsdangerous
``TimestampSigner`` values (HMAC-SHA256); a token older than its purpose's maximum age is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner


class Purpose(StrEnum):
    IDENTITY = "identity-cookie"
    UPLOAD = "upload-token"
    FILE_LINK = "file-link"
    EMAIL_CONFIRMATION = "email-confirmation"
    #: Not a token: the key of the user ids written to the logs (server/logs.py).
    LOG_USER = "log-user-hash"
    #: Not a token: the key of the names of each user's browser storage (server/browser_storage.py).
    BROWSER_STORAGE = "browser-storage-key"


def derive_key(master: str, purpose: Purpose) -> bytes:
    """The 32-byte key of one purpose (HKDF-SHA256 of the master secret, the purpose as ``info``)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"smartcat-uploads/tokens/v1", info=purpose.value.encode())
    return hkdf.derive(master.encode())


@dataclass(frozen=True, slots=True)
class Verified:
    value: str
    issued_at: datetime


class TokenSigner:
    """Signs values for one purpose and checks them within ``max_age`` seconds."""

    def __init__(self, master: str, purpose: Purpose, max_age: int) -> None:
        self.purpose = purpose
        self.max_age = max_age
        self._signer = TimestampSigner(
            derive_key(master, purpose), salt=purpose.value, key_derivation="none", digest_method=hashlib.sha256
        )

    def sign(self, value: str) -> str:
        return self._signer.sign(value).decode("ascii")

    def verify(self, token: str | None) -> Verified | None:
        """The signed value and when it was signed; None when absent, forged, for another purpose, or too old."""
        if not token:
            return None
        try:
            raw, issued = self._signer.unsign(token, max_age=self.max_age, return_timestamp=True)
            return Verified(raw.decode("ascii"), issued.astimezone(UTC))
        except (SignatureExpired, BadSignature, UnicodeDecodeError):
            return None
