"""Upload sessions: the server's memory of which S3 multipart upload is whose, and the part checksums it signed."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import utcnow
from server.models.base import OWNER_KEY_LENGTH, Base, UTCDateTime


def new_session_id() -> str:
    """128 random bits, URL-safe: unguessable, so ids can appear in URLs and logs."""
    return secrets.token_urlsafe(16)


class UploadStatus(StrEnum):
    UPLOADING = "uploading"
    COMPLETED = "completed"
    ABORTED = "aborted"
    #: Idle too long (the janitor aborted its multipart upload), or S3 no longer had it when the server looked.
    EXPIRED = "expired"
    FAILED = "failed"  # S3 assembled other bytes than were verified; the object was deleted


class ScanStatus(StrEnum):
    """The malware scan of a completed object (``scan_status``; null: not scanned, uploaded while ``SCAN=off``).

    The upload's ``status`` stays ``completed`` either way (its bytes are assembled, which is what clients resume
    on); whether the object may be handed out is :data:`RELEASED`.
    """

    #: In quarantine, waiting for (or under) a scan.
    PENDING = "pending"
    CLEAN = "clean"
    #: The scanner found ``scan_signature``: stays in quarantine for good.
    INFECTED = "infected"
    #: Larger than ``SCAN_MAX_BYTES`` with ``SCAN_OVERSIZE=block``: not scanned, never handed out.
    TOO_LARGE = "too_large"
    #: Larger than ``SCAN_MAX_BYTES`` with ``SCAN_OVERSIZE=release``: handed out unscanned (and marked so).
    UNSCANNED = "unscanned"


#: Scan states whose object may be downloaded (None: completed before scanning was on, or while it was off).
RELEASED: frozenset[str | None] = frozenset({None, ScanStatus.CLEAN.value, ScanStatus.UNSCANNED.value})


class UploadSession(Base):
    """One S3 multipart upload of one file by one (anonymous) user."""

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_session_id)
    owner_id: Mapped[str] = mapped_column(String(OWNER_KEY_LENGTH), index=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(256), default="")
    object_key: Mapped[str] = mapped_column(String(1024))
    upload_id: Mapped[str] = mapped_column(String(1024))
    part_size: Mapped[int] = mapped_column(BigInteger)
    part_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.UPLOADING.value, index=True)
    etag: Mapped[str | None] = mapped_column(String(128), default=None)
    #: "SHA256" when every part carries a signed x-amz-checksum-sha256 (S3 verifies each part's bytes).
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16), default=None)
    #: The composite checksum S3 reported at completion, checked against the parts' recorded checksums.
    checksum_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The lease (server/lease.py) a request holds while it completes or aborts the upload, so a concurrent one
    #: waits instead of racing it; ``finish_lease_at`` is its deadline, after which the holder is presumed dead.
    finish_lease: Mapped[str | None] = mapped_column(String(32), default=None)
    finish_lease_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: The malware scan (:class:`ScanStatus`; null: not scanned) and what it found.
    scan_status: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    scan_signature: Mapped[str | None] = mapped_column(String(255), default=None)
    #: Failed attempts to reach the scanner; the next one is due at ``scan_next_at`` (capped backoff, no give-up).
    scan_attempts: Mapped[int] = mapped_column(Integer, default=0)
    scan_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    scan_error: Mapped[str | None] = mapped_column(Text, default=None)
    #: The scanner's lease (server/lease.py) while it streams the object: a scanner that dies mid-scan lets go at
    #: the deadline and another instance scans again.
    scan_lease: Mapped[str | None] = mapped_column(String(32), default=None)
    scan_lease_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def released(self) -> bool:
        """Completed and not held in quarantine: its object may be handed out."""
        return self.status == UploadStatus.COMPLETED.value and self.scan_status in RELEASED


class PartChecksum(Base):
    """The checksum signed into a part's latest URL: what S3 verified, so completion can be checked end to end."""

    __tablename__ = "part_checksums"

    session_id: Mapped[str] = mapped_column(ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True)
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))


class LinkRevocation(Base):
    """Links to a file's status page issued until ``revoked_before`` no longer work (see :mod:`server.links`)."""

    __tablename__ = "link_revocations"

    session_id: Mapped[str] = mapped_column(ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True)
    revoked_before: Mapped[datetime] = mapped_column(UTCDateTime())
