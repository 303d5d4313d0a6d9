"""The notifier: turns ``upload_completed`` and ``upload_blocked`` events into at most one message per upload per
channel, batched and rate limited (a blocked file is named with its verdict, never with a link).

It is an outbox consumer (``deliver`` records ledger items, one per available channel, due after the batching
window) and a background loop that sends what is due: all pending items of one user and channel go out as one
message, unless the user's rate limit is used up, in which case they wait (and collect more) until it allows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import logs, metrics
from server.background import LeasedLoop
from server.clock import utcnow
from server.db import Database
from server.lease import Lease
from server.models import Channel, EventType, ItemStatus, NotificationItem, NotificationMessage, UploadSession
from server.notify.policy import CompletedFile, next_allowed_at
from server.outbox import Event
from server.retry import WorkPolicy
from wire.view import BLOCKED_SCANS, scan_text

log = logging.getLogger("server.notify")

#: The notifier's hold on the items of a batch while it sends them (their status is ``sending`` meanwhile).
SENDING_LEASE = Lease(NotificationItem, NotificationItem.claim_token, NotificationItem.claimed_until)


class SendError(Exception):
    """A message could not go out now; it is retried with backoff."""


class PermanentSendError(Exception):
    """The channel refused this message for good (e.g. the address was rejected): no retry."""


class ChannelGone(Exception):
    """The channel is no longer usable for this user (no subscription left, no address): nothing to retry."""


class ChannelSender(Protocol):
    """One channel (push, email)."""

    @property
    def channel(self) -> Channel: ...

    def available(self, db: Session, user_id: str) -> bool:
        """Whether the user can get this channel now (runs in a worker thread)."""
        ...

    async def send(self, user_id: str, files: Sequence[CompletedFile]) -> None:
        """Send one message about ``files``; raise :class:`SendError`, :class:`PermanentSendError` or
        :class:`ChannelGone` when it did not go out."""
        ...


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    batch_seconds: float = 10.0
    rate_limit: int = 6
    rate_window_seconds: float = 3600.0
    send_timeout_seconds: float = 60.0
    work: WorkPolicy = field(default_factory=WorkPolicy)


@dataclass(frozen=True, slots=True)
class Batch:
    user_id: str
    channel: Channel
    token: str
    item_ids: tuple[int, ...]
    attempts: int
    files: tuple[CompletedFile, ...]


class Notifier(LeasedLoop):
    """Outbox consumer ``notifications`` plus the loop that sends due batches."""

    name = "notifications"

    def __init__(self, database: Database, senders: Sequence[ChannelSender], config: NotifierConfig) -> None:
        super().__init__("notifier", config.work.poll_seconds, database)
        self.senders: Mapping[Channel, ChannelSender] = {sender.channel: sender for sender in senders}
        self.config = config

    # -- outbox consumer

    def wants(self, event_type: str) -> bool:
        return event_type in (EventType.UPLOAD_COMPLETED.value, EventType.UPLOAD_BLOCKED.value)

    async def deliver(self, event: Event) -> None:
        created = await asyncio.to_thread(self.enqueue, event.session_id, event.owner_id)
        if created:
            self.poke()

    def enqueue(self, session_id: str, user_id: str) -> int:
        """Ledger items for every channel the user can get now; existing ones (a redelivered event) stay as they
        are. Returns how many were created."""
        created = 0
        due = utcnow() + timedelta(seconds=self.config.batch_seconds)
        with self.database.sessions() as db:
            for channel, sender in self.senders.items():
                if not sender.available(db, user_id):
                    continue
                try:
                    with db.begin_nested():
                        db.add(
                            NotificationItem(session_id=session_id, user_id=user_id, channel=channel.value, due_at=due)
                        )
                except IntegrityError:
                    continue  # one item per upload per channel, already there
                created += 1
            db.commit()
        return created

    # -- lifecycle

    async def run_round(self) -> datetime | None:
        return await self.send_due()

    # -- one round

    async def send_due(self) -> datetime | None:
        """Send every batch that is due; return when the next pending item falls due. A stopping notifier claims
        nothing (what it sends already, it finishes)."""
        if self.stopping:
            return None
        batches = await asyncio.to_thread(self._claim_batches)
        await asyncio.gather(*(self._send(batch) for batch in batches))
        return await asyncio.to_thread(self._next_due)

    async def _send(self, batch: Batch) -> None:
        sender = self.senders.get(batch.channel)
        try:
            if sender is None:
                raise ChannelGone(f"channel {batch.channel} is not configured")
            if not batch.files:
                raise ChannelGone("the uploads are gone")
            await asyncio.wait_for(sender.send(batch.user_id, batch.files), self.config.send_timeout_seconds)
        except ChannelGone as error:
            log.info("%s notification for %s skipped: %s", batch.channel, logs.user_hash(batch.user_id), error)
            metrics.NOTIFICATIONS.labels(batch.channel.value, "skipped").inc()
            await asyncio.to_thread(self._settle, batch, ItemStatus.SKIPPED, str(error))
        except PermanentSendError as error:
            log.warning("%s notification for %s refused: %s", batch.channel, logs.user_hash(batch.user_id), error)
            metrics.NOTIFICATIONS.labels(batch.channel.value, "refused").inc()
            await asyncio.to_thread(self._settle, batch, ItemStatus.FAILED, str(error))
        except Exception as error:
            message = str(error) or type(error).__name__
            log.warning(
                "%s notification for %s failed, will retry: %s", batch.channel, logs.user_hash(batch.user_id), message
            )
            await asyncio.to_thread(self._retry_later, batch, message)
        else:
            metrics.NOTIFICATIONS.labels(batch.channel.value, "sent").inc()
            await asyncio.to_thread(self._sent, batch)

    # -- database work (threads)

    def _claim_batches(self) -> list[Batch]:
        now = utcnow()
        config = self.config
        batches: list[Batch] = []
        with self.database.sessions() as db:
            # A process that died while sending left items "sending": once their lease is over they are due again.
            SENDING_LEASE.release(
                db,
                NotificationItem.status == ItemStatus.SENDING.value,
                SENDING_LEASE.overdue(now),
                status=ItemStatus.PENDING.value,
            )
            groups = db.execute(
                select(NotificationItem.user_id, NotificationItem.channel)
                .where(NotificationItem.status == ItemStatus.PENDING.value)
                .group_by(NotificationItem.user_id, NotificationItem.channel)
                .having(func.min(NotificationItem.due_at) <= now)
            ).all()
            for user_id, channel in groups:
                in_group = (
                    NotificationItem.user_id == user_id,
                    NotificationItem.channel == channel,
                    NotificationItem.status == ItemStatus.PENDING.value,
                )
                window_start = now - timedelta(seconds=config.rate_window_seconds)
                sent = db.scalars(
                    select(NotificationMessage.sent_at).where(
                        NotificationMessage.user_id == user_id,
                        NotificationMessage.channel == channel,
                        NotificationMessage.sent_at > window_start,
                    )
                ).all()
                allowed = next_allowed_at(
                    [t.timestamp() for t in sent], now.timestamp(), config.rate_limit, config.rate_window_seconds
                )
                if allowed > now.timestamp():
                    later = now + timedelta(seconds=allowed - now.timestamp())
                    db.execute(
                        update(NotificationItem)
                        .where(*in_group, NotificationItem.due_at < later)
                        .values(due_at=later)
                        .execution_options(synchronize_session=False)
                    )
                    continue
                token = self._claimant.token()
                SENDING_LEASE.claim(
                    db,
                    *in_group,
                    token=token,
                    now=now,
                    hold=config.work.lease,
                    status=ItemStatus.SENDING.value,
                )
                rows = db.execute(
                    select(NotificationItem, UploadSession)
                    .outerjoin(UploadSession, UploadSession.id == NotificationItem.session_id)
                    .where(NotificationItem.claim_token == token)
                    .order_by(NotificationItem.id)
                ).all()
                if not rows:
                    continue
                files = tuple(
                    CompletedFile(
                        session_id=u.id,
                        file_name=u.file_name,
                        size=u.size,
                        completed_at=u.completed_at,
                        blocked=scan_text(u.scan_status, u.scan_signature) if u.scan_status in BLOCKED_SCANS else None,
                    )
                    for _, u in rows
                    if u is not None
                )
                batches.append(
                    Batch(
                        user_id=user_id,
                        channel=Channel(channel),
                        token=token,
                        item_ids=tuple(item.id for item, _ in rows),
                        attempts=max(item.attempts for item, _ in rows),
                        files=files,
                    )
                )
            db.commit()
        return batches

    def _sent(self, batch: Batch) -> None:
        now = utcnow()
        with self.database.sessions() as db:
            message = NotificationMessage(
                user_id=batch.user_id, channel=batch.channel.value, sent_at=now, item_count=len(batch.item_ids)
            )
            db.add(message)
            db.flush()
            SENDING_LEASE.release(
                db,
                SENDING_LEASE.held_by(batch.token),
                status=ItemStatus.SENT.value,
                sent_at=now,
                message_id=message.id,
                last_error=None,
            )
            # Old messages no longer count toward any limit.
            db.execute(
                delete(NotificationMessage).where(
                    NotificationMessage.sent_at < now - timedelta(seconds=2 * self.config.rate_window_seconds)
                )
            )
            db.commit()

    def _settle(self, batch: Batch, status: ItemStatus, error: str) -> None:
        with self.database.sessions() as db:
            SENDING_LEASE.release(db, SENDING_LEASE.held_by(batch.token), status=status.value, last_error=error[:2000])
            db.commit()

    def _retry_later(self, batch: Batch, error: str) -> None:
        attempts = batch.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000]}
        retry_at = self.config.work.retry_at(attempts, utcnow())
        if retry_at is None:
            log.error(
                "%s notification for %s given up after %d attempts",
                batch.channel,
                logs.user_hash(batch.user_id),
                attempts,
            )
            metrics.NOTIFICATIONS.labels(batch.channel.value, "given_up").inc()
            values["status"] = ItemStatus.FAILED.value
        else:
            metrics.NOTIFICATIONS.labels(batch.channel.value, "retry").inc()
            values["status"] = ItemStatus.PENDING.value
            values["due_at"] = retry_at
        with self.database.sessions() as db:
            SENDING_LEASE.release(db, SENDING_LEASE.held_by(batch.token), **values)
            db.commit()

    def _next_due(self) -> datetime | None:
        with self.database.sessions() as db:
            return db.scalar(
                select(func.min(NotificationItem.due_at)).where(NotificationItem.status == ItemStatus.PENDING.value)
            )

    def release_held(self, db: Session) -> None:
        SENDING_LEASE.release(
            db,
            NotificationItem.status == ItemStatus.SENDING.value,
            SENDING_LEASE.held_by_claimant(self._claimant),
            status=ItemStatus.PENDING.value,
        )
