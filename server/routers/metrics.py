"""``/metrics``: Prometheus exposition, for the monitoring system only.

Who may read it: with ``METRICS_TOKEN`` set, a request carrying ``Authorization: Bearer <METRICS_TOKEN>`` (what
Prometheus' ``authorization`` scrape option sends); without it, nobody, unless the app is served only on this
machine (a loopback ``PUBLIC_ORIGIN``: development and tests). Everyone else gets 404, as for a page that does not
exist. The metrics carry no ids or names, but traffic and failure rates are still nobody else's business.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from server.db import Database
from server.metrics import OutboxCollector, render
from server.models import DeliveryStatus, OutboxEvent
from server.settings import Settings, is_loopback_origin

router = APIRouter(include_in_schema=False)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def may_scrape(settings: Settings, authorization: str | None) -> bool:
    """Whether a request with this ``Authorization`` header may read the metrics."""
    if settings.metrics_token is None:
        return is_loopback_origin(settings.public_origin)
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), settings.metrics_token.encode())


def outbox_backlog(database: Database) -> tuple[int, datetime | None]:
    """Undelivered outbox events and when the oldest was created."""
    with database.sessions() as db:
        count, oldest = db.execute(
            select(func.count(), func.min(OutboxEvent.created_at)).where(
                OutboxEvent.status == DeliveryStatus.PENDING.value
            )
        ).one()
    return int(count), oldest


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    if not may_scrape(request.app.state.settings, request.headers.get("authorization")):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    database: Database = request.app.state.database
    body = await run_in_threadpool(render, OutboxCollector(lambda: outbox_backlog(database)))
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
