"""Transactional outbox: upload events written in the same transaction as the state change, delivered later.

The request that completes (or aborts) an upload adds an ``outbox_events`` row before its commit, so an event exists
exactly when the state change does: none for a change that rolled back, none lost to a crash after the commit. The
:class:`Dispatcher`, a background task, hands each event to every consumer at least once, retrying with capped
exponential backoff, and keeps a receipt per consumer so a retry does not repeat a consumer that already succeeded.
Rows are claimed with a lease (a conditional UPDATE), so several server processes may run dispatchers side by side,
and an event whose dispatcher died mid-delivery is picked up again once its lease runs out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, event, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.background import DueLoop
from server.db import Base, Database, UploadSession, UTCDateTime, utcnow

log = logging.getLogger("server.outbox")


class EventType(StrEnum):
    UPLOAD_COMPLETED = "upload_completed"
    UPLOAD_ABORTED = "upload_aborted"
    #: S3 no longer has the multipart upload of a session nobody finished (a lifecycle rule removed it).
    UPLOAD_EXPIRED = "upload_expired"
    #: The end-to-end checksum check failed at completion: the object was deleted, the upload must start over.
    UPLOAD_FAILED = "upload_failed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Gave up after ``OUTBOX_MAX_ATTEMPTS``; kept for inspection, never retried by itself.
    FAILED = "failed"


class OutboxEvent(Base):
    """One event about one upload session; at most one of each type per session."""

    __tablename__ = "outbox_events"
    __table_args__ = (UniqueConstraint("session_id", "type", name="uq_outbox_session_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: Stable across retries: consumers deduplicate on it (delivery is at least once).
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[str] = mapped_column(String(32), index=True)
    owner_id: Mapped[str] = mapped_column(String(64))
    #: The exact JSON body every consumer gets, fixed at commit time so retries send the same bytes.
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class OutboxReceipt(Base):
    """A consumer has taken an event; a retry of the event skips it."""

    __tablename__ = "outbox_receipts"

    event_pk: Mapped[int] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# ---- writing events (inside the request's transaction) -----------------------------------------------------------

#: Set on a SQLAlchemy session that added an event, so its commit can wake the dispatcher at once.
NEW_EVENTS = "outbox.new_events"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def upload_event_payload(
    row: UploadSession,
    event_type: EventType,
    *,
    event_id: str,
    at: datetime,
    etag: str | None,
    checksum_sha256: str | None,
) -> dict[str, Any]:
    """What consumers learn about the upload. ``at``, ``etag`` and the checksum are passed in because the caller's
    UPDATE has not refreshed ``row``."""
    completed = event_type is EventType.UPLOAD_COMPLETED
    return {
        "event_id": event_id,
        "type": event_type.value,
        "occurred_at": _iso(at),
        "data": {
            "session_id": row.id,
            "owner_id": row.owner_id,
            "object_key": row.object_key,
            "file_name": row.file_name,
            "size": row.size,
            "content_type": row.content_type,
            "etag": etag if completed else None,
            # S3's composite checksum (base64 SHA-256 over the parts' SHA-256 digests, "-N"), verified by the server
            # against the checksums signed into the part URLs; null for uploads made without checksums.
            "checksum_sha256": checksum_sha256 if completed else None,
            "fingerprint": row.fingerprint,
            "status": {
                EventType.UPLOAD_COMPLETED: "completed",
                EventType.UPLOAD_ABORTED: "aborted",
                EventType.UPLOAD_EXPIRED: "expired",
            }[event_type],
            "created_at": _iso(row.created_at),
            "completed_at": _iso(at) if completed else None,
        },
    }


def record_upload_event(
    db: Session,
    row: UploadSession,
    event_type: EventType,
    *,
    at: datetime | None = None,
    etag: str | None = None,
    checksum_sha256: str | None = None,
) -> OutboxEvent:
    """Add the event to ``db``'s transaction; the caller commits it together with the state change."""
    at = at or utcnow()
    event_id = str(uuid.uuid4())
    payload = upload_event_payload(
        row, event_type, event_id=event_id, at=at, etag=etag, checksum_sha256=checksum_sha256
    )
    outbox_row = OutboxEvent(
        event_id=event_id,
        type=event_type.value,
        session_id=row.id,
        owner_id=row.owner_id,
        payload=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        created_at=at,
        next_attempt_at=at,
    )
    db.add(outbox_row)
    db.info[NEW_EVENTS] = True
    return outbox_row


def record_upload_event_once(db: Session, row: UploadSession, event_type: EventType) -> bool:
    """Record an event that has no state change of its own (expiry is only observed), unless one exists.

    Commits. A savepoint keeps a lost race on the unique (session, type) key from undoing anything else.
    """
    exists = db.scalar(
        select(func.count()).where(OutboxEvent.session_id == row.id, OutboxEvent.type == event_type.value)
    )
    if exists:
        return False
    try:
        with db.begin_nested():
            record_upload_event(db, row, event_type)
    except IntegrityError:
        db.commit()
        return False
    db.commit()
    return True


# ---- delivering them -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """An outbox row as consumers see it."""

    pk: int
    event_id: str
    type: str
    session_id: str
    owner_id: str
    payload: str
    created_at: datetime
    attempts: int

    @property
    def body(self) -> bytes:
        return self.payload.encode("utf-8")


class Consumer(Protocol):
    """Somewhere events go. ``deliver`` raises to ask for a retry; it must tolerate seeing an event twice."""

    @property
    def name(self) -> str: ...

    def wants(self, event_type: str) -> bool: ...

    async def deliver(self, event: Event) -> None: ...


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with "equal jitter": half the step fixed, half random.

    The fixed half keeps a retry from firing at once after a failure (full jitter can pick ~0); the random half
    spreads retries of many events failing together (a consumer that was down) over time.
    """
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    poll_seconds: float = 2.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    max_attempts: int = 20
    lease_seconds: float = 120.0
    #: Each consumer call is cut off after this long (and retried), so one hung consumer cannot stall the queue.
    consumer_timeout_seconds: float = 60.0
    batch_size: int = 32


class Dispatcher(DueLoop):
    """Delivers due outbox events to the consumers, one asyncio task, database work in threads."""

    def __init__(self, database: Database, consumers: Sequence[Consumer], config: DispatcherConfig) -> None:
        super().__init__("outbox-dispatcher", config.poll_seconds)
        self.database = database
        self.consumers = list(consumers)
        self.config = config
        self._instance = secrets.token_hex(6)
        self._claims = 0

    # -- lifecycle

    def start(self) -> None:
        event.listen(self.database.sessions, "after_commit", self._after_commit)
        super().start()

    async def stop(self) -> None:
        if not self.started:
            return
        event.remove(self.database.sessions, "after_commit", self._after_commit)
        await super().stop()
        # Events this process claimed but did not finish are due again at once, not after the lease.
        await asyncio.to_thread(self._release_claims)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(NEW_EVENTS, False):
            self.poke()

    async def run_round(self) -> datetime | None:
        return await self.dispatch_due()

    # -- one round

    async def dispatch_due(self) -> datetime | None:
        """Deliver every event due now; return when the next pending one falls due (None: nothing pending)."""
        while True:
            claimed = await asyncio.to_thread(self._claim_due)
            if not claimed:
                break
            await asyncio.gather(*(self._deliver(event, done) for event, done in claimed))
        return await asyncio.to_thread(self._next_due)

    async def _deliver(self, event: Event, done: set[str]) -> None:
        errors: list[str] = []
        for consumer in self.consumers:
            if consumer.name in done or not consumer.wants(event.type):
                continue
            try:
                await asyncio.wait_for(consumer.deliver(event), self.config.consumer_timeout_seconds)
            except Exception as error:
                message = str(error) or type(error).__name__
                log.warning("event %s (%s) to %s failed: %s", event.event_id, event.type, consumer.name, message)
                errors.append(f"{consumer.name}: {message}")
                continue
            await asyncio.to_thread(self._receipt, event.pk, consumer.name)
        if errors:
            await asyncio.to_thread(self._retry_later, event, "; ".join(errors))
        else:
            await asyncio.to_thread(self._delivered, event.pk)

    # -- database work (threads)

    def _claim_due(self) -> list[tuple[Event, set[str]]]:
        now = utcnow()
        self._claims += 1
        token = f"{self._instance}-{self._claims}"
        with self.database.sessions() as db:
            due = list(
                db.scalars(
                    select(OutboxEvent.id)
                    .where(
                        OutboxEvent.status == DeliveryStatus.PENDING.value,
                        OutboxEvent.next_attempt_at <= now,
                        or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
                    )
                    .order_by(OutboxEvent.id)
                    .limit(self.config.batch_size)
                )
            )
            if not due:
                return []
            # The conditional UPDATE is the claim: a row another dispatcher took in between is not ours.
            db.execute(
                update(OutboxEvent)
                .where(
                    OutboxEvent.id.in_(due),
                    OutboxEvent.status == DeliveryStatus.PENDING.value,
                    or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
                )
                .values(claim_token=token, claimed_until=now + timedelta(seconds=self.config.lease_seconds))
                .execution_options(synchronize_session=False)
            )
            db.commit()
            rows = list(db.scalars(select(OutboxEvent).where(OutboxEvent.claim_token == token)))
            receipts: dict[int, set[str]] = {}
            for pk, consumer in db.execute(
                select(OutboxReceipt.event_pk, OutboxReceipt.consumer).where(
                    OutboxReceipt.event_pk.in_([r.id for r in rows])
                )
            ):
                receipts.setdefault(pk, set()).add(consumer)
            return [
                (
                    Event(
                        pk=r.id,
                        event_id=r.event_id,
                        type=r.type,
                        session_id=r.session_id,
                        owner_id=r.owner_id,
                        payload=r.payload,
                        created_at=r.created_at,
                        attempts=r.attempts,
                    ),
                    receipts.get(r.id, set()),
                )
                for r in rows
            ]

    def _receipt(self, pk: int, consumer: str) -> None:
        with self.database.sessions() as db:
            db.merge(OutboxReceipt(event_pk=pk, consumer=consumer, delivered_at=utcnow()))
            db.commit()

    def _delivered(self, pk: int) -> None:
        with self.database.sessions() as db:
            db.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == pk)
                .values(
                    status=DeliveryStatus.DELIVERED.value,
                    delivered_at=utcnow(),
                    claim_token=None,
                    claimed_until=None,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
            db.commit()

    def _retry_later(self, event: Event, error: str) -> None:
        attempts = event.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000], "claim_token": None}
        values["claimed_until"] = None
        if attempts >= self.config.max_attempts:
            values["status"] = DeliveryStatus.FAILED.value
            log.error("event %s (%s) given up after %d attempts: %s", event.event_id, event.type, attempts, error)
        else:
            delay = retry_delay(attempts, self.config.retry_base_seconds, self.config.retry_max_seconds)
            values["next_attempt_at"] = utcnow() + timedelta(seconds=delay)
        with self.database.sessions() as db:
            db.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == event.pk)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            db.commit()

    def _next_due(self) -> datetime | None:
        with self.database.sessions() as db:
            now = utcnow()
            return db.scalar(
                select(func.min(OutboxEvent.next_attempt_at)).where(
                    OutboxEvent.status == DeliveryStatus.PENDING.value,
                    or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
                )
            )

    def _release_claims(self) -> None:
        with self.database.sessions() as db:
            db.execute(
                update(OutboxEvent)
                .where(
                    OutboxEvent.status == DeliveryStatus.PENDING.value,
                    OutboxEvent.claim_token.like(f"{self._instance}-%"),
                )
                .values(claim_token=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            db.commit()
