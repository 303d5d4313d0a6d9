"""The transactional outbox's tables: one event per final state of an upload session, and per-consumer receipts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import utcnow
from server.models.base import OWNER_KEY_LENGTH, Base, UTCDateTime
from server.models.uploads import UploadStatus


class EventType(StrEnum):
    UPLOAD_COMPLETED = "upload_completed"
    UPLOAD_ABORTED = "upload_aborted"
    #: The session expired: idle too long, or S3 no longer had its multipart upload (a lifecycle rule removed it).
    UPLOAD_EXPIRED = "upload_expired"
    #: The end-to-end checksum check failed at completion: the object was deleted, the upload must start over.
    UPLOAD_FAILED = "upload_failed"
    #: The malware scan found something (or the object was too large to scan with ``SCAN_OVERSIZE=block``): the
    #: object stays in quarantine. A completed upload announces either this or ``upload_completed``, never both.
    UPLOAD_BLOCKED = "upload_blocked"


#: The event each final state is announced with. One table for both directions (the payload's ``status`` is the
#: state), so a final state cannot lack its event.
EVENT_FOR_STATUS: Mapping[UploadStatus, EventType] = {
    UploadStatus.COMPLETED: EventType.UPLOAD_COMPLETED,
    UploadStatus.ABORTED: EventType.UPLOAD_ABORTED,
    UploadStatus.EXPIRED: EventType.UPLOAD_EXPIRED,
    UploadStatus.FAILED: EventType.UPLOAD_FAILED,
}


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
    owner_id: Mapped[str] = mapped_column(String(OWNER_KEY_LENGTH))
    #: The exact JSON body every consumer gets, fixed at commit time so retries send the same bytes.
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The dispatcher's lease (server/lease.py) while it delivers the event.
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
