"""``POST /api/telemetry``: a browser's batch of what only it sees, fed to the metrics and the sessions' timelines.

Authenticated like every API call (the caller's own sessions only: entries for sessions that are not the caller's
are ignored, so nobody can write into another user's timeline or skew metrics by naming sessions), rate-limited per
identity and address (``RATE_LIMIT_TELEMETRY``), and validated strictly (:mod:`server.telemetry.schemas`). Event
times are moved onto the server's clock by the difference between the batch's ``sent_at`` and the server's now, so
a browser whose clock is hours off still lands its events in the right place in the timeline.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from server import metrics, timeline
from server.dependencies import DbSession
from server.identity import CurrentUser
from server.models import SessionEvent, Source, UploadSession
from server.ratelimit import RateLimitsDep, client_address
from server.telemetry.schemas import EventIn, TelemetryIn
from wire.telemetry import TELEMETRY_PATH

router = APIRouter(tags=["telemetry"])


class TelemetryAccepted(BaseModel):
    #: Uploads whose events were taken; ``ignored``: named sessions that are not the caller's.
    accepted: int
    ignored: int


def _count(size: int, events: list[EventIn], resumed_before: bool) -> None:
    """Move the client metrics by one upload's events (``size`` from the server's own record)."""
    resumed = resumed_before
    for event in events:
        metrics.TELEMETRY_EVENTS.labels(event.kind).inc()
        match event.kind:
            case "retry":
                metrics.CLIENT_RETRIES.labels(event.detail).inc()
                if event.detail == "bad_digest":
                    metrics.CHECKSUM_FAILURES.labels("part").inc()
            case "stall":
                metrics.CLIENT_STALLS.inc(event.value)
            case "offline":
                metrics.CLIENT_OFFLINE_PERIODS.inc()
                metrics.CLIENT_OFFLINE_SECONDS.observe(event.value)
            case "resumed":
                metrics.CLIENT_RESUMES.labels(event.detail).inc()
                resumed = resumed or event.detail != "user"
            case "completed":
                if event.value > 0:
                    metrics.CLIENT_THROUGHPUT.labels(metrics.size_class(size)).observe(event.value)
                if resumed:
                    metrics.CLIENT_RESUMED_ENDED.labels("completed").inc()
            case "failed" if resumed:
                metrics.CLIENT_RESUMED_ENDED.labels("failed").inc()


def _resumed_before(db: DbSession, session_id: str) -> bool:
    """Whether an earlier batch said this upload resumed after a close, a crash or the network (a pause the user
    lifted is not a resume that could fail)."""
    return (
        db.scalar(
            select(SessionEvent.id)
            .where(
                SessionEvent.session_id == session_id,
                SessionEvent.source == Source.CLIENT.value,
                SessionEvent.kind == "resumed",
                SessionEvent.detail != "user",
            )
            .limit(1)
        )
        is not None
    )


@router.post(TELEMETRY_PATH, status_code=202, response_model=TelemetryAccepted)
def report(
    batch: TelemetryIn, owner: CurrentUser, db: DbSession, rate_limits: RateLimitsDep, request: Request
) -> TelemetryAccepted:
    rate_limits.hit("telemetry batches", rate_limits.telemetry, f"user:{owner}", f"addr:{client_address(request)}")
    offset = time.time() - batch.sent_at
    named = [u.session_id for u in batch.uploads]
    owned = select(UploadSession.id, UploadSession.size).where(
        UploadSession.id.in_(named), UploadSession.owner_id == owner
    )
    sizes = {session_id: size for session_id, size in db.execute(owned)}
    for upload in batch.uploads:
        size = sizes.get(upload.session_id)
        if size is None:
            continue
        _count(size, upload.events, _resumed_before(db, upload.session_id))
        timeline.add_client_events(
            db,
            upload.session_id,
            [(datetime.fromtimestamp(e.at + offset, UTC), e.kind, e.detail, e.value) for e in upload.events],
        )
    if batch.boot is not None:
        metrics.CLIENT_BOOT.labels(batch.boot.mode).observe(batch.boot.seconds)
    db.commit()
    return TelemetryAccepted(accepted=len(sizes), ignored=len(batch.uploads) - len(sizes))
