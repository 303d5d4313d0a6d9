"""Expire upload sessions nobody has touched for a long time, so S3 does not keep their parts forever.

Incomplete multipart uploads cost storage and are invisible in bucket listings; a session idle past
``SESSION_MAX_IDLE_SECONDS``, or older than ``SESSION_MAX_AGE_SECONDS`` however busy, is aborted on S3 and marked
expired (a client that comes back is told to start over).
The sweep is a plain function (tested directly); :class:`Janitor` runs it as a :class:`~server.background.DueLoop`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from server.background import DueLoop
from server.clock import utcnow
from server.db import Database
from server.models import UploadSession, UploadStatus
from server.storage import Storage, StorageError
from server.uploads.service import UploadService

log = logging.getLogger(__name__)


def expire_idle_sessions(
    database: Database,
    storage: Storage,
    max_idle: timedelta,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> list[str]:
    """Abort the multipart upload of every session idle longer than ``max_idle`` or older than ``max_age``; return
    the ids expired."""
    now = now or utcnow()
    cutoff = now - max_idle
    too_old = UploadSession.created_at < now - max_age if max_age is not None else UploadSession.updated_at < cutoff
    expired: list[str] = []
    with database.sessions() as db:
        service = UploadService(db, storage)
        stale = db.scalars(
            select(UploadSession).where(
                UploadSession.status == UploadStatus.UPLOADING.value,
                or_(UploadSession.updated_at < cutoff, too_old),
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

    def __init__(
        self, database: Database, storage: Storage, max_idle: timedelta, interval: float, max_age: timedelta
    ) -> None:
        super().__init__("janitor", interval)
        self._database = database
        self._storage = storage
        self._max_idle = max_idle
        self._max_age = max_age

    async def run_round(self) -> datetime | None:
        await asyncio.to_thread(
            expire_idle_sessions, self._database, self._storage, self._max_idle, max_age=self._max_age
        )
        return None  # nothing is due before the next interval
