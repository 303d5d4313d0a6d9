"""Signed webhooks: every outbox event is POSTed to ``WEBHOOK_URL`` for downstream consumers.

Signature scheme (what a receiver checks, see :func:`verify`):

- ``Smartcat-Timestamp``: Unix seconds when this attempt was signed;
- ``Smartcat-Signature``: ``v1=`` + hex HMAC-SHA256 with ``WEBHOOK_SECRET`` over ``<timestamp>.`` + the raw body.

Binding the timestamp into the MAC lets a receiver refuse replays of an old request (outside a tolerance window)
without keeping state; ``Smartcat-Event-Id`` (also ``event_id`` in the body) is stable across retries, so a receiver
deduplicates the at-least-once deliveries by it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

import aiohttp

from server.outbox import Event

SIGNATURE_HEADER = "Smartcat-Signature"
TIMESTAMP_HEADER = "Smartcat-Timestamp"
EVENT_ID_HEADER = "Smartcat-Event-Id"
EVENT_TYPE_HEADER = "Smartcat-Event-Type"
SCHEME = "v1"
#: Receivers refuse requests signed longer ago (or further ahead, for clock skew) than this.
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The request is not a fresh, authentic webhook from this server."""


class WebhookDeliveryError(Exception):
    """The receiver did not accept the event (non-2xx or unreachable); the outbox retries."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(
    secret: str, body: bytes, *, event_id: str, event_type: str, now: float | None = None
) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise :class:`WebhookVerificationError` unless ``body`` was signed with ``secret`` within ``tolerance``.

    Header names are matched case-insensitively, whatever mapping ``headers`` is.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    raw_timestamp = lowered.get(TIMESTAMP_HEADER.lower())
    raw_signature = lowered.get(SIGNATURE_HEADER.lower())
    if not raw_timestamp or not raw_signature:
        raise WebhookVerificationError("missing signature or timestamp header")
    try:
        timestamp = int(raw_timestamp)
    except ValueError as error:
        raise WebhookVerificationError("malformed timestamp") from error
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("timestamp outside the replay window")
    expected = signature(secret, timestamp, body)
    # Several "v1=" values may be sent while a secret is being rotated; one match is enough.
    offered = [value.strip() for value in raw_signature.split(",")]
    if not any(hmac.compare_digest(expected, value) for value in offered):
        raise WebhookVerificationError("signature does not match")


class WebhookConsumer:
    """Outbox consumer that POSTs each event's JSON, signed, to one URL.

    Sent with aiohttp (the client push notifications use): per request it costs a fraction of the CPU httpx did
    (``python -m load.cpu``). ``timeout_seconds`` bounds connecting and each wait for the receiver's bytes; redirects
    are not followed (a signed event goes to the configured URL only)."""

    name = "webhook"

    def __init__(self, url: str, secret: str, session: aiohttp.ClientSession, timeout_seconds: float) -> None:
        self.url = url
        self.secret = secret
        self.session = session
        self.timeout = aiohttp.ClientTimeout(connect=timeout_seconds, sock_read=timeout_seconds)

    def wants(self, event_type: str) -> bool:
        return True

    async def deliver(self, event: Event) -> None:
        body = event.body
        headers = signed_headers(self.secret, body, event_id=event.event_id, event_type=event.type)
        try:
            async with self.session.post(
                self.url, data=body, headers=headers, allow_redirects=False, timeout=self.timeout
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise WebhookDeliveryError(f"POST {self.url}: {type(error).__name__}: {error}") from error
        if not 200 <= status < 300:
            raise WebhookDeliveryError(f"POST {self.url} answered {status}")
