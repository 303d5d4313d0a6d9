"""Expire upload sessions nobody has touched for a long time, so S3 does not keep their parts forever.

Incomplete multipart uploads cost storage and are invisible in bucket listings; a session idle past
``SESSION_MAX_IDLE_SECONDS`` is aborted on S3 and marked expired (a client that comes back is told to start over).
The sweep is a plain function (tested directly); :class:`Janitor` runs it as a :class:`~server.background.DueLoop`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from server.background import DueLoop
from server.clock import utcnow
from server.db import Database
from server.models import UploadSession, UploadStatus
from server.storage import Storage, StorageError
from server.uploads.service import UploadService

log = logging.getLogger(__name__)


def expire_idle_sessions(
    database: Database, storage: Storage, max_idle: timedelta, now: datetime | None = None
) -> list[str]:
    """Abort the multipart upload of every session idle longer than ``max_idle``; return the ids expired."""
    cutoff = (now or utcnow()) - max_idle
    expired: list[str] = []
    with database.sessions() as db:
        service = UploadService(db, storage)
        stale = db.scalars(
            select(UploadSession).where(
                UploadSession.status == UploadStatus.UPLOADING.value,
                UploadSession.updated_at < cutoff,
                UploadSession.finish_lease.is_(None),  # a complete or abort is under way: leave it alone
            )
        ).all()
        for row in stale:
            try:
                if service.expire_idle(row):
                    expired.append(row.id)
            except StorageError as error:
                log.warning("could not abort idle session %s (will retry next sweep): %s", row.id, error)
    if expired:
        log.info("expired %d idle upload session(s)", len(expired))
    return expired


class Janitor(DueLoop):
    """Runs :func:`expire_idle_sessions` every ``interval`` seconds in the server process."""

    def __init__(self, database: Database, storage: Storage, max_idle: timedelta, interval: float) -> None:
        super().__init__("janitor", interval)
        self._database = database
        self._storage = storage
        self._max_idle = max_idle

    async def run_round(self) -> datetime | None:
        await asyncio.to_thread(expire_idle_sessions, self._database, self._storage, self._max_idle)
        return None  # nothing is due before the next interval
