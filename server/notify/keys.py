"""Keys that must survive restarts: the VAPID key pair and the webhook secret, generated into ``DATA_DIR`` once.

A browser's push subscription is bound to the VAPID public key it was made with, so a key regenerated on every start
would silently break every subscription; hence the file, written once (:mod:`server.keyfiles`: two processes
starting together agree on one key) with mode 0600.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from server.keyfiles import read_or_create
from server.settings import Settings

VAPID_KEY_FILE = "vapid_private_key.pem"
WEBHOOK_SECRET_FILE = "webhook_secret"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    """The server's VAPID identity: signs the JWT of every push; the public half goes to the page."""

    vapid: Vapid

    @property
    def public_key(self) -> str:
        """Uncompressed P-256 point, base64url: the ``applicationServerKey`` browsers subscribe with."""
        point: bytes = self.vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)


def _new_private_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_vapid_keys(settings: Settings) -> VapidKeys:
    """``VAPID_PRIVATE_KEY`` (base64url raw 32-byte key, or base64 DER), else ``DATA_DIR/vapid_private_key.pem``."""
    if settings.vapid_private_key:
        try:
            vapid = Vapid.from_string(settings.vapid_private_key)
        except Exception as error:
            raise ValueError(f"VAPID_PRIVATE_KEY is not a usable P-256 private key: {error}") from error
        return VapidKeys(vapid)
    pem = read_or_create(settings.data_dir / VAPID_KEY_FILE, _new_private_pem)
    return VapidKeys(Vapid.from_pem(pem))


def resolve_webhook_secret(settings: Settings) -> str:
    """``WEBHOOK_SECRET``, or one generated into ``DATA_DIR/webhook_secret`` (share it with the receiver)."""
    if settings.webhook_secret:
        return settings.webhook_secret
    data = read_or_create(settings.data_dir / WEBHOOK_SECRET_FILE, lambda: secrets.token_urlsafe(32).encode("ascii"))
    return data.decode("ascii").strip()
