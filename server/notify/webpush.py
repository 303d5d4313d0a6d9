"""The Web Push channel: one encrypted (aes128gcm), VAPID-signed push per subscription, through pywebpush.

Push services answer 404/410 for a subscription that no longer exists: it is deleted. 429 and 5xx (and network
errors) are retried; other refusals end that subscription's part of the message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from pywebpush import WebPushException, webpush_async
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from server.db import Database
from server.models import Channel, PushSubscription, UserProfile
from server.notify.keys import VapidKeys
from server.notify.notifier import ChannelGone, PermanentSendError, SendError
from server.notify.policy import CompletedFile, push_payload

log = logging.getLogger("server.notify.push")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def endpoint_allowed(endpoint: str, allowed_hosts: Sequence[str]) -> bool:
    """Whether the server may POST to a browser-supplied endpoint.

    The endpoint comes from the page, so without a check any visitor could make this server send requests to any
    host (SSRF). Only push services' hosts (or their subdomains) are allowed, over https; http only on loopback.
    """
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    if not host or parts.username or parts.password:
        return False
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return False
    return any(host == allowed or host.endswith("." + allowed) for allowed in (h.lower() for h in allowed_hosts))


@dataclass(frozen=True, slots=True)
class _Target:
    id: int
    endpoint: str
    p256dh: str
    auth: str


class PushSender:
    channel = Channel.PUSH

    def __init__(
        self,
        database: Database,
        keys: VapidKeys,
        *,
        subject: str,
        ttl_seconds: int,
        session: aiohttp.ClientSession,
        timeout_seconds: float,
        allowed_hosts: Sequence[str],
        path_prefix: str = "",
    ) -> None:
        self.database = database
        self.keys = keys
        self.subject = subject
        self.ttl_seconds = ttl_seconds
        self.session = session
        self.timeout_seconds = timeout_seconds
        self.allowed_hosts = list(allowed_hosts)
        self.path_prefix = path_prefix

    def available(self, db: Session, user_id: str) -> bool:
        profile = db.get(UserProfile, user_id)
        if profile is not None and not profile.push_notifications:
            return False
        return db.scalar(select(PushSubscription.id).where(PushSubscription.user_id == user_id).limit(1)) is not None

    def _targets(self, user_id: str) -> list[_Target]:
        with self.database.sessions() as db:
            rows = db.scalars(select(PushSubscription).where(PushSubscription.user_id == user_id)).all()
            return [_Target(r.id, r.endpoint, r.p256dh, r.auth) for r in rows]

    def _forget(self, subscription_id: int) -> None:
        with self.database.sessions() as db:
            db.execute(delete(PushSubscription).where(PushSubscription.id == subscription_id))
            db.commit()

    def _note_error(self, subscription_id: int, error: str) -> None:
        with self.database.sessions() as db:
            db.execute(
                update(PushSubscription).where(PushSubscription.id == subscription_id).values(last_error=error[:2000])
            )
            db.commit()

    async def send(self, user_id: str, files: Sequence[CompletedFile]) -> None:
        targets = await asyncio.to_thread(self._targets, user_id)
        if not targets:
            raise ChannelGone("no push subscription")
        data = json.dumps(push_payload(files, self.path_prefix), separators=(",", ":"), ensure_ascii=False)
        outcomes = await asyncio.gather(*(self._push(target, data) for target in targets))
        if "sent" in outcomes:
            return
        if "retry" in outcomes:
            raise SendError("no push service accepted the message")
        if all(outcome == "gone" for outcome in outcomes):
            raise ChannelGone("every push subscription has expired")
        raise PermanentSendError("every push service refused the message")

    async def _push(self, target: _Target, data: str) -> str:
        """``sent``, ``gone`` (subscription deleted), ``retry`` or ``refused``."""
        if not endpoint_allowed(target.endpoint, self.allowed_hosts):
            await asyncio.to_thread(self._note_error, target.id, "endpoint host not allowed")
            return "refused"
        try:
            await webpush_async(
                subscription_info={"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}},
                data=data,
                vapid_private_key=self.keys.vapid,
                # pywebpush fills in "aud" (the endpoint's origin) and "exp" (12 h) on this dict: a fresh one each time.
                vapid_claims={"sub": self.subject},
                content_encoding="aes128gcm",
                ttl=self.ttl_seconds,
                headers={"Urgency": "normal"},
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                aiohttp_session=self.session,
            )
        except WebPushException as error:
            status = error.status_code
            host = urlsplit(target.endpoint).hostname
            if status in (404, 410):
                log.info("push subscription at %s is gone (%s): deleted", host, status)
                await asyncio.to_thread(self._forget, target.id)
                return "gone"
            await asyncio.to_thread(self._note_error, target.id, f"{status}: {str(error.message)[:500]}")
            if status is None or status == 429 or status >= 500:
                return "retry"
            log.warning("push service at %s refused the message: %s", host, status)
            return "refused"
        except (aiohttp.ClientError, TimeoutError) as error:
            await asyncio.to_thread(self._note_error, target.id, f"{type(error).__name__}: {error}")
            return "retry"
        return "sent"
