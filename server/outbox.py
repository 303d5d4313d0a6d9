"""Transactional outbox: upload events written in the same transaction as the state change, delivered later.

The request that completes (or aborts) an upload adds an ``outbox_events`` row before its commit, so an event exists
exactly when the state change does: none for a change that rolled back, none lost to a crash after the commit. The
:class:`Dispatcher`, a background task, hands each event to every consumer at least once, retrying with capped
exponential backoff, and keeps a receipt per consumer so a retry does not repeat a consumer that already succeeded.
Rows are claimed with a lease (:mod:`server.lease`), so several server processes may run dispatchers side by side,
and an event whose dispatcher died mid-delivery is picked up again once its lease runs out. The tables are in
:mod:`server.models.outbox`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from server.background import LeasedLoop
from server.clock import utcnow
from server.db import Database
from server.lease import Lease
from server.models import (
    EVENT_FOR_STATUS,
    DeliveryStatus,
    EventType,
    OutboxEvent,
    OutboxReceipt,
    UploadSession,
    UploadStatus,
    table_of,
)
from server.retry import WorkPolicy
from server.upsert import upsert

log = logging.getLogger("server.outbox")

__all__ = [
    "NEW_EVENTS",
    "Consumer",
    "DeliveryStatus",
    "Dispatcher",
    "DispatcherConfig",
    "Event",
    "OutboxEvent",
    "record_upload_event",
    "upload_event_payload",
]

#: The dispatcher's hold on an event while it delivers it.
DELIVERY_LEASE = Lease(OutboxEvent, OutboxEvent.claim_token, OutboxEvent.claimed_until)

# ---- writing events (inside the request's transaction) -----------------------------------------------------------

#: Set on a SQLAlchemy session that added an event, so its commit can wake the dispatcher at once.
NEW_EVENTS = "outbox.new_events"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def upload_event_payload(
    row: UploadSession,
    status: UploadStatus,
    *,
    event_id: str,
    at: datetime,
    etag: str | None,
    checksum_sha256: str | None,
    event_type: EventType | None = None,
    scan: tuple[str, str | None] | None = None,
) -> dict[str, Any]:
    """What consumers learn about the upload that reached the final ``status``. ``at``, ``etag`` and the checksum
    are passed in because the caller's UPDATE has not refreshed ``row``. A scanned completion carries its ``scan``
    verdict (status, signature) and is ``upload_blocked`` when the object stays in quarantine."""
    completed = status is UploadStatus.COMPLETED
    scan_status, signature = scan if scan is not None else (None, None)
    return {
        "event_id": event_id,
        "type": (event_type or EVENT_FOR_STATUS[status]).value,
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
            "status": status.value,
            "created_at": _iso(row.created_at),
            "completed_at": _iso(at) if completed else None,
            # The malware scan: null when the upload was not scanned (SCAN=off).
            "scan": {"status": scan_status, "signature": signature} if scan_status else None,
        },
    }


def record_upload_event(
    db: Session,
    row: UploadSession,
    status: UploadStatus,
    *,
    at: datetime,
    etag: str | None = None,
    checksum_sha256: str | None = None,
    event_type: EventType | None = None,
    scan: tuple[str, str | None] | None = None,
) -> OutboxEvent:
    """Add the event announcing ``status`` to ``db``'s transaction; the caller commits it together with the state
    change (only :mod:`server.uploads.service` changes states)."""
    event_id = str(uuid.uuid4())
    payload = upload_event_payload(
        row,
        status,
        event_id=event_id,
        at=at,
        etag=etag,
        checksum_sha256=checksum_sha256,
        event_type=event_type,
        scan=scan,
    )
    outbox_row = OutboxEvent(
        event_id=event_id,
        type=(event_type or EVENT_FOR_STATUS[status]).value,
        session_id=row.id,
        owner_id=row.owner_id,
        payload=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        created_at=at,
        next_attempt_at=at,
    )
    db.add(outbox_row)
    db.info[NEW_EVENTS] = True
    return outbox_row


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


_EVENTS = table_of(OutboxEvent)
#: The claimed rows as :class:`Event` fields, in their order.
_CLAIMED = select(
    *(
        _EVENTS.c[name]
        for name in ("id", "event_id", "type", "session_id", "owner_id", "payload", "created_at", "attempts")
    )
).where(_EVENTS.c.claim_token == bindparam("token"))


class Consumer(Protocol):
    """Somewhere events go. ``deliver`` raises to ask for a retry; it must tolerate seeing an event twice."""

    @property
    def name(self) -> str: ...

    def wants(self, event_type: str) -> bool: ...

    async def deliver(self, event: Event) -> None: ...


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    work: WorkPolicy = field(default_factory=WorkPolicy)
    #: Each consumer call is cut off after this long (and retried), so one hung consumer cannot stall the queue.
    consumer_timeout_seconds: float = 60.0
    batch_size: int = 32


class Dispatcher(LeasedLoop):
    """Delivers due outbox events to the consumers, one asyncio task, database work in threads."""

    def __init__(self, database: Database, consumers: Sequence[Consumer], config: DispatcherConfig) -> None:
        super().__init__("outbox-dispatcher", config.work.poll_seconds, database, wake_flag=NEW_EVENTS)
        self.consumers = list(consumers)
        self.config = config

    # -- lifecycle

    async def run_round(self) -> datetime | None:
        return await self.dispatch_due()

    # -- one round

    async def dispatch_due(self) -> datetime | None:
        """Deliver every event due now; return when the next pending one falls due (None: nothing pending). A
        stopping dispatcher finishes the batch it holds and claims no other."""
        while not self.stopping:
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
        token = self._claimant.token()
        with self.database.sessions() as db:
            due = list(
                db.scalars(
                    select(OutboxEvent.id)
                    .where(
                        OutboxEvent.status == DeliveryStatus.PENDING.value,
                        OutboxEvent.next_attempt_at <= now,
                        DELIVERY_LEASE.open(now),
                    )
                    .order_by(OutboxEvent.id)
                    .limit(self.config.batch_size)
                )
            )
            if not due:
                return []
            # A row another dispatcher took in between is not ours: the lease's compare-and-set skips it.
            DELIVERY_LEASE.claim(
                db,
                OutboxEvent.id.in_(due),
                OutboxEvent.status == DeliveryStatus.PENDING.value,
                token=token,
                now=now,
                hold=self.config.work.lease,
            )
            db.commit()
            # Core reads of the columns consumers see: no ORM objects to build for rows only read once.
            events = [Event(*r) for r in db.connection().execute(_CLAIMED, {"token": token})]
            receipts: dict[int, set[str]] = {}
            for pk, consumer in db.execute(
                select(OutboxReceipt.event_pk, OutboxReceipt.consumer).where(
                    OutboxReceipt.event_pk.in_([e.pk for e in events])
                )
            ):
                receipts.setdefault(pk, set()).add(consumer)
            return [(event, receipts.get(event.pk, set())) for event in events]

    def _receipt(self, pk: int, consumer: str) -> None:
        with self.database.sessions() as db:
            # One already there (a dispatcher that took the event over wrote it) stays as it is.
            row = {"event_pk": pk, "consumer": consumer, "delivered_at": utcnow()}
            upsert(db, OutboxReceipt, [row], keys=("event_pk", "consumer"), update=())
            db.commit()

    def _delivered(self, pk: int) -> None:
        with self.database.sessions() as db:
            DELIVERY_LEASE.release(
                db, OutboxEvent.id == pk, status=DeliveryStatus.DELIVERED.value, delivered_at=utcnow(), last_error=None
            )
            db.commit()

    def _retry_later(self, event: Event, error: str) -> None:
        attempts = event.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000]}
        retry_at = self.config.work.retry_at(attempts, utcnow())
        if retry_at is None:
            values["status"] = DeliveryStatus.FAILED.value
            log.error("event %s (%s) given up after %d attempts: %s", event.event_id, event.type, attempts, error)
        else:
            values["next_attempt_at"] = retry_at
        with self.database.sessions() as db:
            DELIVERY_LEASE.release(db, OutboxEvent.id == event.pk, **values)
            db.commit()

    def _next_due(self) -> datetime | None:
        with self.database.sessions() as db:
            now = utcnow()
            return db.scalar(
                select(func.min(OutboxEvent.next_attempt_at)).where(
                    OutboxEvent.status == DeliveryStatus.PENDING.value, DELIVERY_LEASE.open(now)
                )
            )

    def release_held(self, db: Session) -> None:
        DELIVERY_LEASE.release(
            db, OutboxEvent.status == DeliveryStatus.PENDING.value, DELIVERY_LEASE.held_by_claimant(self._claimant)
        )
