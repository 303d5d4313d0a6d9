"""A session's support timeline: the server notes what it did (created, URLs issued, parts listed, completed,
failed, scanned …) and the browser's telemetry adds what it saw (retries, stalls, offline, paused, resumed …); support
reads both in time order (``GET /api/admin/uploads/<id>/timeline``, and the status page for admins)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from server.clock import utcnow
from server.models import SessionEvent, Source, table_of

#: Client events kept per session: telemetry cannot grow a session's timeline without bound.
MAX_CLIENT_EVENTS = 1000


def note(db: Session, session_id: str, kind: str, detail: str = "", value: float | None = None) -> None:
    """A server event, written now in the caller's transaction: a plain INSERT on its connection, since nothing
    reads the row back (the ORM's unit of work cost several times the statement, ``python -m load.cpu``)."""
    row = {"session_id": session_id, "at": utcnow(), "source": Source.SERVER.value, "kind": kind, "detail": detail}
    db.connection().execute(_NOTE, {**row, "value": value})


_NOTE = insert(table_of(SessionEvent))


def add_client_events(db: Session, session_id: str, events: list[tuple[datetime, str, str, float]]) -> int:
    """Client events (``at``, kind, detail, value), as many as the session still has room for; returns how many."""
    held = db.query(SessionEvent).filter_by(session_id=session_id, source=Source.CLIENT.value).count()
    room = max(0, MAX_CLIENT_EVENTS - held)
    for at, kind, detail, value in events[:room]:
        db.add(
            SessionEvent(
                session_id=session_id, at=at, source=Source.CLIENT.value, kind=kind, detail=detail, value=value
            )
        )
    return min(room, len(events))


def of_session(db: Session, session_id: str) -> list[SessionEvent]:
    return list(
        db.scalars(
            select(SessionEvent).where(SessionEvent.session_id == session_id).order_by(SessionEvent.at, SessionEvent.id)
        )
    )
