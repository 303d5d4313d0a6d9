"""Expire upload sessions nobody has touched for a long time, so S3 does not keep their parts forever.

Incomplete multipart uploads cost storage and are invisible in bucket listings; a session idle past
``SESSION_MAX_IDLE_SECONDS`` is aborted on S3 and marked expired (a client that comes back is told to start over).
The sweep is a plain function (tested directly); the periodic task only calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from server.db import Database, UploadSession, UploadStatus, utcnow
from server.outbox import EventType, record_upload_event
from server.storage import Storage, StorageError

log = logging.getLogger(__name__)


def expire_idle_sessions(
    database: Database, storage: Storage, max_idle: timedelta, now: datetime | None = None
) -> list[str]:
    """Abort the multipart upload of every session idle longer than ``max_idle``; return their ids."""
    cutoff = (now or utcnow()) - max_idle
    expired: list[str] = []
    with database.sessions() as db:
        stale = db.scalars(
            select(UploadSession).where(
                UploadSession.status == UploadStatus.UPLOADING.value,
                UploadSession.updated_at < cutoff,
                UploadSession.finish_lease.is_(None),  # a complete or abort is under way: leave it alone
            )
        ).all()
        for row in stale:
            try:
                storage.abort(row.object_key, row.upload_id)
            except StorageError as error:
                log.warning("could not abort idle session %s (will retry next sweep): %s", row.id, error)
                continue
            changed = cast(
                "CursorResult[Any]",
                db.execute(
                    update(UploadSession)
                    .where(UploadSession.id == row.id, UploadSession.status == UploadStatus.UPLOADING.value)
                    .values(status=UploadStatus.EXPIRED.value, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                ),
            )
            if changed.rowcount:
                # The event is part of the same transaction as the state change (transactional outbox).
                record_upload_event(db, row, EventType.UPLOAD_EXPIRED)
                expired.append(row.id)
            db.commit()
    if expired:
        log.info("expired %d idle upload session(s)", len(expired))
    return expired


class Janitor:
    """Runs :func:`expire_idle_sessions` every ``interval`` seconds in the server process."""

    def __init__(self, database: Database, storage: Storage, max_idle: timedelta, interval: float) -> None:
        self._database = database
        self._storage = storage
        self._max_idle = max_idle
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="janitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(expire_idle_sessions, self._database, self._storage, self._max_idle)
            except Exception:  # a failed sweep must not end the loop; the next one retries
                log.exception("janitor sweep failed")
            await asyncio.sleep(self._interval)
