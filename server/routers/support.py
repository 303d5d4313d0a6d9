"""Support views: an upload session's timeline (server events and client telemetry, in time order), for admins of
the session's tenant only (``JWT_ADMIN_ROLE``, see :func:`server.routers.account.require_admin`). Anyone else, and
an admin of another tenant, is answered as if the session did not exist (a 403 for non-admins, a 404 otherwise)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from server import timeline
from server.dependencies import DbSession
from server.identity import Principal
from server.models import UploadSession
from server.routers.account import AdminPrincipal

router = APIRouter(tags=["support"])


class TimelineEntry(BaseModel):
    at: datetime
    source: str
    kind: str
    detail: str
    value: float | None


class Timeline(BaseModel):
    session_id: str
    status: str
    scan_status: str | None
    events: list[TimelineEntry]


def supports(principal: Principal | None, owner_id: str) -> bool:
    """Whether ``principal`` is an admin of the tenant owning ``owner_id`` (host owner keys start with the tenant's
    ``h:<tenant>:`` prefix; anonymous owners belong to no tenant an admin has)."""
    if principal is None or not (principal.from_host and principal.is_admin):
        return False
    return owner_id.startswith(Principal(user="", tenant=principal.tenant, from_host=True).owner)


@router.get("/api/admin/uploads/{session_id}/timeline", response_model=Timeline)
def session_timeline(session_id: str, admin: AdminPrincipal, db: DbSession) -> Timeline:
    row = db.get(UploadSession, session_id)
    if row is None or not supports(admin, row.owner_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "upload session not found")
    events = [
        TimelineEntry(at=e.at, source=e.source, kind=e.kind, detail=e.detail, value=e.value)
        for e in timeline.of_session(db, session_id)
    ]
    return Timeline(session_id=row.id, status=row.status, scan_status=row.scan_status, events=events)
