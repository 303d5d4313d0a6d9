"""``/api/uploads``: create a multipart session, presign part URLs, report progress held by S3, complete, abort.

Thin: each handler checks who may use the session, asks :class:`~server.uploads.service.UploadService`, and shapes
the answer. boto3 and SQLAlchemy block, so each handler runs on a worker thread (:func:`~server.blocking.blocking`:
one hand-off per request).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.blocking import blocking
from server.dependencies import DbSession, SettingsDep, StorageDep
from server.identity import Caller, CurrentUser, Identity, SessionCaller, get_identity
from server.models import UploadSession, UploadStatus
from server.ratelimit import RateLimitsDep, client_address
from server.settings import Settings
from server.uploads.problems import Conflict, ranges
from server.uploads.schemas import (
    BackgroundReport,
    CompleteRequest,
    CompleteResponse,
    CreateUploadRequest,
    CreateUploadResponse,
    FinishResponse,
    PartInfo,
    PartUrl,
    PresignRequest,
    PresignResponse,
    SessionState,
    SessionView,
    completed,
    finished,
    session_fields,
)
from server.uploads.service import SignedUrls, UploadPolicy, UploadService
from wire.view import background_title

router = APIRouter(prefix="/api/uploads", tags=["uploads"])
log = logging.getLogger(__name__)


async def get_service(db: DbSession, storage: StorageDep, settings: SettingsDep, request: Request) -> UploadService:
    return UploadService(db, storage, upload_policy(settings, quarantine=request.app.state.scanning))


def upload_policy(settings: Settings, *, quarantine: bool = False) -> UploadPolicy:
    return UploadPolicy(
        require_checksums=settings.require_checksums,
        max_file_size=settings.max_file_size,
        max_open_sessions=settings.max_open_sessions_per_user,
        max_bytes_in_progress=settings.max_bytes_in_progress_per_user,
        max_age=timedelta(seconds=settings.session_max_age_seconds),
        allowed_types=frozenset(settings.allowed_content_types),
        sniff_content=settings.sniff_content,
        quarantine=quarantine,
    )


Service = Annotated[UploadService, Depends(get_service)]


def _owned(db: Session, who: Caller, session_id: str) -> UploadSession:
    """The caller's session (by cookie, or by the session's upload token); someone else's answers 404 exactly like
    a missing one, so ids reveal nothing."""
    row = db.get(UploadSession, session_id, populate_existing=True)
    if row is None or not who.may_use(row.owner_id, session_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "upload session not found")
    return row


def _urls(signed: SignedUrls) -> list[PartUrl]:
    return [PartUrl(part_number=n, url=url) for n, url in signed.urls]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CreateUploadResponse)
@blocking
def create_upload(
    body: CreateUploadRequest,
    owner: CurrentUser,
    service: Service,
    settings: SettingsDep,
    identity: Annotated[Identity, Depends(get_identity)],
    rate_limits: RateLimitsDep,
    request: Request,
) -> CreateUploadResponse:
    """Plan the parts, start the S3 multipart upload, and sign the first batch of part URLs."""
    rate_limits.hit("new uploads", rate_limits.create, f"user:{owner}", f"addr:{client_address(request)}")
    row, signed = service.create(
        owner,
        file_name=body.file_name,
        size=body.size,
        content_type=body.content_type,
        fingerprint=body.fingerprint,
        part_size=body.part_size or settings.part_size_bytes,
        checksum_algorithm=body.checksum_algorithm,
        first_urls=settings.url_batch_size,
        ttl=settings.presign_ttl_seconds,
    )
    return CreateUploadResponse(
        session_id=row.id,
        object_key=row.object_key,
        upload_id=row.upload_id,
        part_size=row.part_size,
        part_count=row.part_count,
        status=row.status,
        urls=_urls(signed),
        urls_expire_at=signed.expires_at,
        server_now=signed.signed_at,
        upload_token=identity.upload_token(row.id),
    )


@router.get("", response_model=list[SessionView])
@blocking
def list_uploads(
    owner: CurrentUser,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status_filter: Annotated[UploadStatus | None, Query(alias="status")] = None,
    fingerprint: Annotated[str | None, Query(max_length=256)] = None,
) -> list[SessionView]:
    """The caller's sessions, newest first, without their parts (that needs S3 calls per session).

    ``fingerprint`` finds earlier uploads of the same file (the client reports "already uploaded").
    """
    query = select(UploadSession).where(UploadSession.owner_id == owner)
    if fingerprint is not None:
        query = query.where(UploadSession.fingerprint == fingerprint)
    if status_filter is not None:
        query = query.where(UploadSession.status == status_filter.value)
    query = query.order_by(UploadSession.created_at.desc(), UploadSession.id).limit(limit)
    return [SessionView(**session_fields(row)) for row in db.scalars(query)]


@router.get("/{session_id}", response_model=SessionState)
@blocking
def get_upload(session_id: str, who: SessionCaller, db: DbSession, service: Service) -> SessionState:
    """The session and the parts S3 already holds: what a resuming client needs to skip finished parts."""
    row = _owned(db, who, session_id)
    parts = service.parts_held(row)
    on_server = row.size if row.status == UploadStatus.COMPLETED.value else sum(part.size for part in parts)
    return SessionState(
        **session_fields(row),
        parts=[PartInfo(part_number=p.number, etag=p.etag, size=p.size) for p in parts],
        bytes_on_server=on_server,
    )


@router.post("/{session_id}/urls", response_model=PresignResponse)
@blocking
def presign_parts(
    session_id: str,
    body: PresignRequest,
    who: SessionCaller,
    db: DbSession,
    service: Service,
    settings: SettingsDep,
    rate_limits: RateLimitsDep,
    request: Request,
) -> PresignResponse:
    """Sign more part URLs (or fresh ones for parts whose URLs expired)."""
    rate_limits.hit("URL requests", rate_limits.urls, f"user:{who.user_id}", f"addr:{client_address(request)}")
    row = _owned(db, who, session_id)
    checksums = {p.part_number: p.checksum_sha256 for p in body.parts} if body.parts is not None else None
    background = body.background and settings.background_hand_off
    ttl = settings.background_presign_ttl_seconds if background else settings.presign_ttl_seconds
    signed = service.sign_parts(row, body.numbers(), checksums, ttl)
    return PresignResponse(urls=_urls(signed), expires_at=signed.expires_at, server_now=signed.signed_at)


@router.post("/{session_id}/complete", response_model=CompleteResponse)
@blocking
def complete_upload(
    session_id: str, body: CompleteRequest, who: SessionCaller, db: DbSession, service: Service
) -> CompleteResponse:
    """Assemble the object. Idempotent: once completed, every call answers the same, whatever its body."""
    row = _owned(db, who, session_id)
    return completed(service.complete(row, [(p.part_number, p.etag) for p in body.parts]))


@router.post("/{session_id}/finish", response_model=FinishResponse)
@blocking
def finish_upload(
    session_id: str, body: BackgroundReport, who: SessionCaller, db: DbSession, service: Service
) -> FinishResponse:
    """The browser's Background Fetch ended (its Service Worker reports): assemble the object from the parts S3
    lists, every one checked against its signed checksum. 409 with ``missing`` when S3 lacks some: the engine sends
    them on the next visit. Idempotent with ``/complete``. Either answer has the ``title`` the browser's UI ends with
    (wire.view.BACKGROUND_TEXT)."""
    row = _owned(db, who, session_id)
    failed = sorted(p.part_number for p in body.parts if p.status != 200)
    if failed:
        log.info("background fetch of %s: parts %s not stored", row.id, ranges(failed))
    try:
        return finished(service.complete_from_storage(row))
    except Conflict as problem:
        if isinstance(problem.detail, dict) and problem.detail.get("missing"):
            problem.detail["title"] = background_title(row.file_name, False)
        raise


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def abort_upload(session_id: str, who: SessionCaller, db: DbSession, service: Service) -> None:
    """Abort the multipart upload and drop its parts. Idempotent; a completed upload cannot be aborted."""
    service.abort(_owned(db, who, session_id))
