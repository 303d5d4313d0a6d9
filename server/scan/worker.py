"""The scanner: a background loop that streams quarantined objects from S3 to clamd and records each verdict.

Sessions are claimed with a lease (:mod:`server.lease`) like outbox events, so several server processes (or
``python -m server.scan`` processes) share the work, and a scanner that dies mid-scan lets go at the deadline: the
object is scanned again, never released without a verdict. A scanner that cannot be reached is retried with capped
exponential backoff and never given up on (the object stays in quarantine, the page says "Checking for viruses…");
its last error is what readiness reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import metrics
from server.background import LeasedLoop
from server.clock import utcnow
from server.db import Database
from server.models import ScanStatus, UploadSession
from server.retry import retry_delay
from server.scan.clamd import Clamd, ScannerUnavailable, Verdict
from server.settings import Settings
from server.storage import Storage, StorageError
from server.uploads.service import NEW_SCANS, SCAN_LEASE, record_scan

log = logging.getLogger("server.scan")


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    max_bytes: int
    oversize: str
    lease: timedelta
    poll_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ScanPolicy:
        return cls(
            max_bytes=settings.scan_max_bytes,
            oversize=settings.scan_oversize,
            lease=timedelta(seconds=settings.scan_lease_seconds),
            poll_seconds=settings.outbox_poll_seconds,
            retry_base_seconds=settings.outbox_retry_base_seconds,
            retry_max_seconds=settings.outbox_retry_max_seconds,
        )


class ScanWorker(LeasedLoop):
    def __init__(self, database: Database, storage: Storage, clamd: Clamd, policy: ScanPolicy) -> None:
        super().__init__("scanner", policy.poll_seconds, database, wake_flag=NEW_SCANS)
        self.storage = storage
        self.clamd = clamd
        self.policy = policy
        #: The last error reaching the scanner; None after a verdict or a successful ping.
        self.last_error: str | None = None

    # -- lifecycle

    async def run_round(self) -> datetime | None:
        while await asyncio.to_thread(self.scan_one):
            pass
        return await asyncio.to_thread(self._next_due)

    def ready(self) -> str | None:
        """None when clamd answers; else why not (readiness)."""
        try:
            self.clamd.ping()
        except ScannerUnavailable as error:
            self.last_error = str(error)
            return self.last_error
        return None

    # -- one scan (in a thread)

    def scan_one(self) -> bool:
        """Claim one due quarantined session and scan it; False when none is due."""
        now = utcnow()
        token = self._claimant.token()
        with self.database.sessions() as db:
            due = db.scalar(
                select(UploadSession.id)
                .where(
                    UploadSession.scan_status == ScanStatus.PENDING.value,
                    UploadSession.scan_next_at <= now,
                    SCAN_LEASE.open(now),
                )
                .order_by(UploadSession.scan_next_at)
                .limit(1)
            )
            if due is None:
                return False
            claimed = SCAN_LEASE.claim(
                db,
                UploadSession.id == due,
                UploadSession.scan_status == ScanStatus.PENDING.value,
                token=token,
                now=now,
                hold=self.policy.lease,
            )
            db.commit()
            if claimed != 1:
                return True  # another scanner took it in between: look for the next one
            row = db.get(UploadSession, due, populate_existing=True)
            assert row is not None
            self._scan(db, row, token)
        return True

    def _scan(self, db: Session, row: UploadSession, token: str) -> None:
        """Scan one claimed session; it ends in exactly one of the outcomes below (one method each)."""
        if row.size > self.policy.max_bytes:
            self._not_scanned(db, row, token, f"{row.size} bytes, more than SCAN_MAX_BYTES")
            return
        started = time.monotonic()
        try:
            body = self.storage.open_object(row.object_key)
            try:
                found = self.clamd.scan(body)
            finally:
                body.close()
        except (ScannerUnavailable, StorageError) as error:
            self._retry_later(db, row, token, str(error))
            return
        self.last_error = None
        took = time.monotonic() - started
        metrics.SCAN_DURATION.labels(metrics.size_class(row.size)).observe(took)
        if found.limits_exceeded:
            self._not_scanned(db, row, token, f"clamd stopped at one of its limits: {found.signature}")
        else:
            self._verdict(db, row, token, found, took)

    def _verdict(self, db: Session, row: UploadSession, token: str, found: Verdict, took: float) -> None:
        """Outcome: clamd read every byte. Clean: released; a signature: blocked."""
        verdict = ScanStatus.CLEAN if found.clean else ScanStatus.INFECTED
        log.info(
            "session %s scanned in %.2f s (%d bytes): %s%s",
            row.id,
            took,
            row.size,
            verdict.value,
            f" ({found.signature})" if found.signature else "",
        )
        record_scan(db, row, token, verdict, found.signature)

    def _not_scanned(self, db: Session, row: UploadSession, token: str, why: str) -> None:
        """Outcome: the object cannot be scanned whole (larger than SCAN_MAX_BYTES, or clamd gave up at a size, time or
        depth limit and said so): ``SCAN_OVERSIZE`` decides, blocked (fail closed) or released marked "not
        checked". Never called "malware found" when nothing was found."""
        verdict = ScanStatus.UNSCANNED if self.policy.oversize == "release" else ScanStatus.TOO_LARGE
        log.warning("session %s not scanned whole (%s): %s", row.id, why, verdict.value)
        record_scan(db, row, token, verdict, None)

    def _retry_later(self, db: Session, row: UploadSession, token: str, error: str) -> None:
        """Outcome: no verdict now (clamd or S3 unreachable, clamd refused the stream): the same object again after
        a capped, growing delay."""
        self.last_error = error
        metrics.SCAN_ERRORS.inc()
        attempts = row.scan_attempts + 1
        delay = retry_delay(attempts, self.policy.retry_base_seconds, self.policy.retry_max_seconds)
        log.warning("session %s: scan attempt %d failed (again in %.0f s): %s", row.id, attempts, delay, error)
        SCAN_LEASE.release(
            db,
            UploadSession.id == row.id,
            SCAN_LEASE.held_by(token),
            scan_attempts=attempts,
            scan_error=error[:2000],
            scan_next_at=utcnow() + timedelta(seconds=delay),
        )
        db.commit()

    def _next_due(self) -> datetime | None:
        with self.database.sessions() as db:
            return db.scalar(
                select(func.min(UploadSession.scan_next_at)).where(
                    UploadSession.scan_status == ScanStatus.PENDING.value, SCAN_LEASE.open(utcnow())
                )
            )

    def release_held(self, db: Session) -> None:
        SCAN_LEASE.release(
            db, UploadSession.scan_status == ScanStatus.PENDING.value, SCAN_LEASE.held_by_claimant(self._claimant)
        )


def scan_worker(settings: Settings, database: Database, storage: Storage) -> ScanWorker:
    clamd = Clamd(settings.clamd_host, settings.clamd_port, settings.clamd_timeout_seconds)
    return ScanWorker(database, storage, clamd, ScanPolicy.from_settings(settings))
