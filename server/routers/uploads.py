"""``/api/uploads``: create a multipart session, presign part URLs, report progress held by S3, complete, abort.

Handlers are plain ``def``: boto3 and SQLAlchemy block, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from browser_py.engine.plan import MAX_PARTS, PartPlan, PlanError, plan_parts
from server.db import PartChecksum, UploadSession, UploadStatus, new_session_id, utcnow
from server.dependencies import DbSession, SettingsDep, StorageDep
from server.identity import Caller, CurrentUser, Identity, SessionCaller, get_identity
from server.outbox import EventType, record_upload_event, record_upload_event_once
from server.settings import Settings
from server.storage import InvalidParts, ObjectNotFound, Storage, StoredPart, UploadNotFound

router = APIRouter(prefix="/api/uploads", tags=["uploads"])

#: A complete or abort that has held its lease this long is presumed dead, and another request may take over
#: (S3 may take minutes to complete a very large object).
LEASE_STALE_AFTER = timedelta(minutes=10)
#: How long a second complete/abort waits for the first one to finish before answering 409.
LEASE_WAIT_SECONDS = 30.0
MAX_URLS_PER_REQUEST = 100


# ---- request and response models -------------------------------------------------------------------------------


class CreateUploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(min_length=1, max_length=1024, description="Shown to the user; never used as a path.")
    size: int = Field(ge=0, description="File size in bytes (at most 5 TiB).")
    content_type: str = Field(default="application/octet-stream", max_length=255, pattern=r"^[\x20-\x7e]*$")
    fingerprint: str = Field(default="", max_length=256, description="Client's identity of the file content.")
    part_size: int | None = Field(default=None, gt=0, description="Preferred part size; the server may round up.")
    checksum_algorithm: Literal["SHA256"] | None = Field(
        default=None,
        description="SHA256: every part URL is signed with the part's x-amz-checksum-sha256, which S3 verifies; "
        "URLs are then only issued for parts whose checksum is given (none come with the new session).",
    )

    @field_validator("content_type")
    @classmethod
    def _default_empty_type(cls, value: str) -> str:
        """Browsers report ``""`` for unknown types."""
        return value.strip() or "application/octet-stream"


class PartUrl(BaseModel):
    part_number: int
    url: str


class CreateUploadResponse(BaseModel):
    session_id: str
    object_key: str
    upload_id: str
    part_size: int
    part_count: int
    status: str
    urls: list[PartUrl]
    urls_expire_at: float = Field(description="Epoch seconds after which the URLs are refused.")
    upload_token: str = Field(
        description="Send as X-Upload-Token on this session's calls: lets the client resume even if it lost its "
        "identity cookie (browsers can lose recent cookies in a crash)."
    )


class PartToSign(BaseModel):
    part_number: int
    checksum_sha256: str = Field(description="Base64 of the part's SHA-256 (32 bytes).")

    @field_validator("checksum_sha256")
    @classmethod
    def _is_sha256(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError as error:
            raise ValueError("checksum_sha256 is not base64") from error
        if len(raw) != 32:
            raise ValueError("checksum_sha256 must encode 32 bytes")
        return value


class PresignRequest(BaseModel):
    """Either ``part_numbers`` (sessions without checksums) or ``parts`` with their checksums."""

    model_config = ConfigDict(extra="forbid")

    part_numbers: list[int] | None = Field(default=None, min_length=1, max_length=MAX_URLS_PER_REQUEST)
    parts: list[PartToSign] | None = Field(default=None, min_length=1, max_length=MAX_URLS_PER_REQUEST)

    @model_validator(mode="after")
    def _exactly_one(self) -> PresignRequest:
        if (self.part_numbers is None) == (self.parts is None):
            raise ValueError("give either part_numbers or parts")
        return self

    def numbers(self) -> list[int]:
        if self.parts is not None:
            return [p.part_number for p in self.parts]
        return list(self.part_numbers or [])


class PresignResponse(BaseModel):
    urls: list[PartUrl]
    expires_at: float = Field(description="Epoch seconds after which the URLs are refused.")


class PartInfo(BaseModel):
    part_number: int
    etag: str
    size: int


class SessionView(BaseModel):
    session_id: str
    file_name: str
    size: int
    content_type: str
    fingerprint: str
    object_key: str
    upload_id: str
    part_size: int
    part_count: int
    status: str
    etag: str | None
    checksum_algorithm: str | None = None
    checksum_sha256: str | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class SessionState(SessionView):
    parts: list[PartInfo] = Field(description="Parts S3 holds; empty once the upload is completed or aborted.")
    bytes_on_server: int


class CompletedPart(BaseModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=128)


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PARTS)


class CompleteResponse(BaseModel):
    session_id: str
    status: str
    object_key: str
    etag: str
    size: int


# ---- helpers ---------------------------------------------------------------------------------------------------


def _view(row: UploadSession) -> dict[str, Any]:
    return {
        "session_id": row.id,
        "file_name": row.file_name,
        "size": row.size,
        "content_type": row.content_type,
        "fingerprint": row.fingerprint,
        "object_key": row.object_key,
        "upload_id": row.upload_id,
        "part_size": row.part_size,
        "part_count": row.part_count,
        "status": row.status,
        "etag": row.etag,
        "checksum_algorithm": row.checksum_algorithm,
        "checksum_sha256": row.checksum_sha256,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "completed_at": row.completed_at,
    }


def _completed(row: UploadSession) -> CompleteResponse:
    return CompleteResponse(
        session_id=row.id, status=row.status, object_key=row.object_key, etag=row.etag or "", size=row.size
    )


def _owned(db: Session, who: Caller, session_id: str) -> UploadSession:
    """The caller's session (by cookie, or by the session's upload token); someone else's answers 404 exactly like
    a missing one, so ids reveal nothing."""
    row = db.get(UploadSession, session_id, populate_existing=True)
    if row is None or not who.may_use(row.owner_id, session_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "upload session not found")
    return row


def _plan(row: UploadSession) -> PartPlan:
    return PartPlan(size=row.size, part_size=row.part_size, part_count=row.part_count)


def _presign(
    storage: Storage,
    settings: Settings,
    row: UploadSession,
    numbers: Iterable[int],
    checksums: Mapping[int, str] | None = None,
) -> tuple[list[PartUrl], float]:
    ttl = settings.presign_ttl_seconds
    # Read the clock before signing, so the reported expiry is never later than the real one.
    expires_at = time.time() + ttl
    urls = [
        PartUrl(
            part_number=n,
            url=storage.presign_part(row.object_key, row.upload_id, n, ttl, checksums[n] if checksums else None),
        )
        for n in numbers
    ]
    return urls, expires_at


def _record_checksums(db: Session, row: UploadSession, checksums: Mapping[int, str]) -> None:
    """Keep the checksum signed into each part's latest URL: the one S3 verified if that PUT succeeds."""
    for number, checksum in checksums.items():
        db.merge(PartChecksum(session_id=row.id, part_number=number, sha256=checksum))
    db.commit()


def composite_sha256(checksums: Sequence[str]) -> str:
    """S3's checksum of a multipart object: SHA-256 over the parts' raw SHA-256 digests, then ``-<count>``."""
    digest = hashlib.sha256(b"".join(base64.b64decode(c) for c in checksums)).digest()
    return f"{base64.b64encode(digest).decode()}-{len(checksums)}"


def _ranges(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``: readable even when thousands of parts are missing."""
    spans: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], n)
        else:
            spans.append((n, n))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _take_lease(db: Session, row: UploadSession) -> str | None:
    """Atomically claim the right to finish (complete or abort) an uploading session; None if someone holds it.

    A conditional UPDATE is the check-and-set: of two racing requests exactly one sees a changed row, whatever
    the database (SQLite serialises writers; others lock the row).
    """
    token = secrets.token_hex(8)
    now = utcnow()
    result = cast(
        "CursorResult[Any]",
        db.execute(
            update(UploadSession)
            .where(
                UploadSession.id == row.id,
                UploadSession.status == UploadStatus.UPLOADING.value,
                or_(
                    UploadSession.finish_lease.is_(None),
                    UploadSession.finish_lease_at < now - LEASE_STALE_AFTER,
                ),
            )
            .values(finish_lease=token, finish_lease_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    db.commit()
    return token if result.rowcount == 1 else None


def _release_lease(db: Session, row: UploadSession, token: str) -> None:
    db.execute(
        update(UploadSession)
        .where(UploadSession.id == row.id, UploadSession.finish_lease == token)
        .values(finish_lease=None, finish_lease_at=None)
        .execution_options(synchronize_session=False)
    )
    db.commit()


def _signed_checksums(db: Session, row: UploadSession) -> dict[int, str] | None:
    """The checksum of every part, as signed into its latest URL; None for uploads without checksums."""
    if not row.checksum_algorithm:
        return None
    rows = db.scalars(select(PartChecksum).where(PartChecksum.session_id == row.id))
    checksums = {r.part_number: r.sha256 for r in rows}
    unsigned = [n for n in range(1, row.part_count + 1) if n not in checksums]
    if unsigned:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            {"message": f"no checksummed URL was ever issued for part {_ranges(unsigned)}", "missing": unsigned,
             "unexpected": []},
        )
    return checksums


def _verify_composite(
    db: Session, storage: Storage, row: UploadSession, checksums: Mapping[int, str], reported: str | None
) -> None:
    """End-to-end check: S3's composite checksum must be the one our recorded part checksums make.

    A mismatch means S3 assembled other bytes than were verified: the object is deleted rather than trusted, and
    the session is marked failed (with its event) so the client starts over instead of retrying forever.
    """
    expected = composite_sha256([checksums[n] for n in sorted(checksums)])
    if reported is not None and reported != expected:
        storage.delete_object(row.object_key)
        _finish(db, row, UploadStatus.FAILED, None, reported)
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            {"message": "storage assembled bytes that do not match the verified parts; the object was deleted",
             "expected": expected, "reported": reported},
        )


#: The outbox event each final state is announced with.
_EVENT_FOR = {
    UploadStatus.COMPLETED: EventType.UPLOAD_COMPLETED,
    UploadStatus.ABORTED: EventType.UPLOAD_ABORTED,
    UploadStatus.FAILED: EventType.UPLOAD_FAILED,
}


def _finish(
    db: Session, row: UploadSession, new_status: UploadStatus, etag: str | None, checksum: str | None = None
) -> None:
    """Record what S3 did. Not conditional on our lease: even if it was presumed dead and taken, S3 acted."""
    now = utcnow()
    result = db.execute(
        update(UploadSession)
        .where(UploadSession.id == row.id, UploadSession.status == UploadStatus.UPLOADING.value)
        .values(
            status=new_status.value,
            etag=etag,
            checksum_sha256=checksum,
            finish_lease=None,
            finish_lease_at=None,
            updated_at=now,
            completed_at=now if new_status is UploadStatus.COMPLETED else None,
        )
        .execution_options(synchronize_session=False)
    )
    if cast("CursorResult[Any]", result).rowcount == 1:
        # In the same transaction as the state change (transactional outbox); a second finisher changes no row
        # and so records no second event.
        record_upload_event(db, row, _EVENT_FOR[new_status], at=now, etag=etag, checksum_sha256=checksum)
    db.commit()


def _expired(db: Session, row: UploadSession) -> HTTPException:
    """The 410 for an upload S3 no longer has, after recording ``upload_expired`` (once per session)."""
    record_upload_event_once(db, row, EventType.UPLOAD_EXPIRED)
    return HTTPException(status.HTTP_410_GONE, "upload session expired on storage")


def _lease(db: Session, row: UploadSession) -> tuple[UploadSession, str | None]:
    """The lease to finish ``row``; while another request holds it, wait for it to let go. Returns the fresh row
    and the lease token, or no token when the other request finished the session (the caller answers from the
    row)."""
    token = _take_lease(db, row)
    if token is not None:
        return row, token
    row = _wait_for_other_finisher(db, row)
    if row.status != UploadStatus.UPLOADING.value:
        return row, None
    token = _take_lease(db, row)
    if token is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "another request is finishing this upload; retry later")
    return row, token


def _wait_for_other_finisher(db: Session, row: UploadSession) -> UploadSession:
    """Another request holds the lease: wait (bounded) until it lets go, then return the fresh row."""
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while True:
        db.refresh(row)
        if row.status != UploadStatus.UPLOADING.value or row.finish_lease is None:
            return row
        if time.monotonic() >= deadline:
            raise HTTPException(status.HTTP_409_CONFLICT, "another request is finishing this upload; retry later")
        time.sleep(0.05)


def _unquoted(etag: str) -> str:
    return etag.strip().strip('"')


def _best_copies(stored: list[StoredPart], plan: PartPlan) -> list[StoredPart]:
    """One copy per planned part number.

    SeaweedFS lists every copy of a part sent more than once, with LastModified in whole seconds and copies of the
    same second in no particular order. Prefer a copy of the planned size (usable to complete), then the newest.
    """
    oldest = datetime.min.replace(tzinfo=UTC)

    def rank(part: StoredPart) -> tuple[bool, datetime]:
        return part.size == plan.length_of(part.number), part.last_modified or oldest

    best: dict[int, StoredPart] = {}
    for part in stored:
        if not 1 <= part.number <= plan.part_count:
            continue
        current = best.get(part.number)
        if current is None or rank(part) > rank(current):
            best[part.number] = part
    return [best[number] for number in sorted(best)]


def _check_parts(plan: PartPlan, stored: list[StoredPart], given: dict[int, str]) -> None:
    """Refuse to assemble an object S3 cannot build or whose parts do not match the plan (wrong bytes sent).

    ETags S3 does not know for a part are left for S3 to refuse (InvalidPart), so its word stays the final one.
    """
    copies: dict[int, dict[str, StoredPart]] = {}
    for part in stored:
        copies.setdefault(part.number, {})[_unquoted(part.etag)] = part
    absent = [n for n in sorted(given) if n not in copies]
    if absent:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            {"message": f"storage holds no part {_ranges(absent)}", "missing": absent, "unexpected": []},
        )
    wrong: list[tuple[int, int]] = []
    for number, etag in sorted(given.items()):
        copy = copies[number].get(_unquoted(etag))
        if copy is not None and copy.size != plan.length_of(number):
            wrong.append((number, copy.size))
    if wrong:
        first, held = wrong[0]
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            {
                "message": (
                    f"part size does not match the plan for part {_ranges(n for n, _ in wrong)} "
                    f"(part {first} holds {held} bytes, expected {plan.length_of(first)})"
                ),
                "wrong_size": [n for n, _ in wrong],
            },
        )


# ---- endpoints -------------------------------------------------------------------------------------------------


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CreateUploadResponse)
def create_upload(
    body: CreateUploadRequest,
    owner: CurrentUser,
    db: DbSession,
    storage: StorageDep,
    settings: SettingsDep,
    identity: Annotated[Identity, Depends(get_identity)],
) -> CreateUploadResponse:
    """Plan the parts, start the S3 multipart upload, and sign the first batch of part URLs."""
    try:
        plan = plan_parts(body.size, body.part_size or settings.part_size_bytes)
    except PlanError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    session_id = new_session_id()
    object_key = f"uploads/{owner}/{session_id}"
    upload_id = storage.create_multipart(
        object_key, body.content_type, file_name=body.file_name, checksum_algorithm=body.checksum_algorithm
    )
    row = UploadSession(
        id=session_id,
        owner_id=owner,
        file_name=body.file_name,
        size=body.size,
        content_type=body.content_type,
        fingerprint=body.fingerprint,
        object_key=object_key,
        upload_id=upload_id,
        part_size=plan.part_size,
        part_count=plan.part_count,
        status=UploadStatus.UPLOADING.value,
        checksum_algorithm=body.checksum_algorithm,
    )
    try:
        db.add(row)
        db.commit()
    except Exception:
        db.rollback()
        storage.abort(object_key, upload_id)
        raise
    first = 0 if row.checksum_algorithm else min(plan.part_count, settings.url_batch_size)
    urls, expires_at = _presign(storage, settings, row, range(1, first + 1))
    return CreateUploadResponse(
        session_id=row.id,
        object_key=row.object_key,
        upload_id=row.upload_id,
        part_size=row.part_size,
        part_count=row.part_count,
        status=row.status,
        urls=urls,
        urls_expire_at=expires_at,
        upload_token=identity.upload_token(row.id),
    )


@router.get("", response_model=list[SessionView])
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
    return [SessionView(**_view(row)) for row in db.scalars(query)]


@router.get("/{session_id}", response_model=SessionState)
def get_upload(session_id: str, who: SessionCaller, db: DbSession, storage: StorageDep) -> SessionState:
    """The session and the parts S3 already holds: what a resuming client needs to skip finished parts."""
    row = _owned(db, who, session_id)
    parts: list[StoredPart] = []
    if row.status == UploadStatus.UPLOADING.value:
        try:
            parts = _best_copies(storage.list_parts(row.object_key, row.upload_id), _plan(row))
        except UploadNotFound as error:
            db.refresh(row)
            # A complete or abort may have just finished it; only an upload nobody finished has expired.
            if row.status == UploadStatus.UPLOADING.value and row.finish_lease is None:
                raise _expired(db, row) from error
    completed = row.status == UploadStatus.COMPLETED.value
    on_server = row.size if completed else sum(part.size for part in parts)
    return SessionState(
        **_view(row),
        parts=[PartInfo(part_number=p.number, etag=p.etag, size=p.size) for p in parts],
        bytes_on_server=on_server,
    )


@router.post("/{session_id}/urls", response_model=PresignResponse)
def presign_parts(
    session_id: str,
    body: PresignRequest,
    who: SessionCaller,
    db: DbSession,
    storage: StorageDep,
    settings: SettingsDep,
) -> PresignResponse:
    """Sign more part URLs (or fresh ones for parts whose URLs expired)."""
    row = _owned(db, who, session_id)
    if row.status != UploadStatus.UPLOADING.value:
        raise HTTPException(status.HTTP_409_CONFLICT, f"upload is {row.status}; no more parts can be sent")
    outside = sorted({n for n in body.numbers() if not 1 <= n <= row.part_count})
    if outside:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"part numbers {_ranges(outside)} are outside 1..{row.part_count}",
        )
    numbers = list(dict.fromkeys(body.numbers()))
    checksums: dict[int, str] | None = None
    if row.checksum_algorithm:
        if body.parts is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "this upload is checksummed: give parts with checksum_sha256"
            )
        checksums = {p.part_number: p.checksum_sha256 for p in body.parts}
        _record_checksums(db, row, checksums)
    urls, expires_at = _presign(storage, settings, row, numbers, checksums)
    row.updated_at = utcnow()  # the client is alive: the janitor measures idleness from here
    db.commit()
    return PresignResponse(urls=urls, expires_at=expires_at)


@router.post("/{session_id}/complete", response_model=CompleteResponse)
def complete_upload(
    session_id: str, body: CompleteRequest, who: SessionCaller, db: DbSession, storage: StorageDep
) -> CompleteResponse:
    """Assemble the object. Idempotent: once completed, every call answers the same, whatever its body."""
    row = _owned(db, who, session_id)
    if row.status == UploadStatus.COMPLETED.value:
        return _completed(row)
    if row.status in (UploadStatus.FAILED.value, UploadStatus.EXPIRED.value):
        raise HTTPException(status.HTTP_410_GONE, f"upload {row.status}; start a new one")
    if row.status == UploadStatus.ABORTED.value:
        raise HTTPException(status.HTTP_409_CONFLICT, "upload was aborted; start a new one")

    counts = Counter(part.part_number for part in body.parts)
    duplicates = sorted(n for n, count in counts.items() if count > 1)
    if duplicates:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"part numbers {_ranges(duplicates)} are listed more than once"
        )
    numbers = set(counts)
    expected = set(range(1, row.part_count + 1))
    missing, unexpected = sorted(expected - numbers), sorted(numbers - expected)
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing parts {_ranges(missing)}")
        if unexpected:
            problems.append(f"parts {_ranges(unexpected)} are outside 1..{row.part_count}")
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            {"message": "; ".join(problems), "missing": missing, "unexpected": unexpected},
        )

    row, token = _lease(db, row)
    if token is None:  # another request finished it meanwhile
        if row.status == UploadStatus.COMPLETED.value:
            return _completed(row)
        raise HTTPException(status.HTTP_409_CONFLICT, f"upload was {row.status}; start a new one")

    try:
        try:
            given = {p.part_number: p.etag for p in body.parts}
            _check_parts(_plan(row), storage.list_parts(row.object_key, row.upload_id), given)
            checksums = _signed_checksums(db, row)
            assembled = storage.complete(row.object_key, row.upload_id, list(given.items()), checksums)
            etag, composite = assembled.etag, assembled.checksum_sha256
            if checksums is not None:
                _verify_composite(db, storage, row, checksums, composite)
        except UploadNotFound as error:
            # An earlier attempt may have completed it and lost its answer: the key is this session's alone.
            try:
                info = storage.head_object(row.object_key)
            except ObjectNotFound:
                raise _expired(db, row) from error
            if info.size != row.size:
                raise _expired(db, row) from error
            etag, composite = info.etag, None
    except InvalidParts as error:
        _release_lease(db, row, token)
        raise HTTPException(
            status.HTTP_409_CONFLICT, {"message": f"storage refused the parts: {error.message}", "code": error.code}
        ) from error
    except BaseException:
        _release_lease(db, row, token)
        raise
    _finish(db, row, UploadStatus.COMPLETED, etag, composite)
    db.refresh(row)
    return _completed(row)


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def abort_upload(session_id: str, who: SessionCaller, db: DbSession, storage: StorageDep) -> None:
    """Abort the multipart upload and drop its parts. Idempotent; a completed upload cannot be aborted."""
    row = _owned(db, who, session_id)
    if row.status == UploadStatus.ABORTED.value:
        return
    if row.status == UploadStatus.COMPLETED.value:
        raise HTTPException(status.HTTP_409_CONFLICT, "upload is completed; it cannot be aborted")
    row, token = _lease(db, row)
    if token is None:  # another request finished it meanwhile
        if row.status == UploadStatus.COMPLETED.value:
            raise HTTPException(status.HTTP_409_CONFLICT, "upload is completed; it cannot be aborted")
        return  # aborted, expired or failed: its multipart upload is gone either way
    try:
        storage.abort(row.object_key, row.upload_id)
    except BaseException:
        _release_lease(db, row, token)
        raise
    _finish(db, row, UploadStatus.ABORTED, None)
