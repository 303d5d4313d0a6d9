"""The JSON of ``/api/uploads``: requests as validated on the way in, answers as clients (the engine) read them."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.models import UploadSession
from wire.plan import MAX_PARTS
from wire.view import background_title

MAX_URLS_PER_REQUEST = 100


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
    server_now: float = Field(
        description="The server's clock (epoch seconds) when it signed: clients judge the URLs' lifetime "
        "(urls_expire_at - server_now) on their own clock, which may be off."
    )
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
    background: bool = Field(
        default=False,
        description="For a hand-off to the browser's Background Fetch: signed for BACKGROUND_PRESIGN_TTL_SECONDS "
        "where the deployment allows the hand-off (part URLs on the app's origin), else as usual.",
    )

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
    server_now: float = Field(
        description="The server's clock (epoch seconds) when it signed: clients judge the URLs' lifetime "
        "(expires_at - server_now) on their own clock, which may be off."
    )


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
    scan_status: str | None = Field(
        default=None,
        description='The malware scan of the completed object: "pending" (in quarantine: "Checking for viruses…"), '
        '"clean", "infected" (see scan_signature), "too_large" (blocked unscanned), "unscanned" (released '
        "unscanned: too large to scan); null: not scanned (scanning off).",
    )
    scan_signature: str | None = None


class SessionState(SessionView):
    parts: list[PartInfo] = Field(description="Parts S3 holds; empty once the upload is completed or aborted.")
    bytes_on_server: int


class CompletedPart(BaseModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=128)


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PARTS)


class ReportedPart(BaseModel):
    """One request of a Background Fetch, as the Service Worker saw its answer."""

    part_number: int = Field(ge=1, le=MAX_PARTS)
    status: int = Field(ge=0, le=599, description="HTTP status of the PUT; 0: it got no answer")
    etag: str | None = Field(default=None, max_length=128)


class BackgroundReport(BaseModel):
    """What a browser's Background Fetch did. Informational: the server completes from what S3 lists."""

    model_config = ConfigDict(extra="forbid")

    parts: list[ReportedPart] = Field(default_factory=list, max_length=MAX_PARTS)


class CompleteResponse(BaseModel):
    session_id: str
    status: str
    object_key: str
    etag: str
    size: int
    scan_status: str | None = None
    scan_signature: str | None = None


class FinishResponse(CompleteResponse):
    title: str = Field(description="What the browser's Background Fetch UI says now (web/sw.js shows it).")


def session_fields(row: UploadSession) -> dict[str, Any]:
    """A session as :class:`SessionView` names its fields."""
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
        "scan_status": row.scan_status,
        "scan_signature": row.scan_signature,
    }


def completed(row: UploadSession) -> CompleteResponse:
    return CompleteResponse(
        session_id=row.id,
        status=row.status,
        object_key=row.object_key,
        etag=row.etag or "",
        size=row.size,
        scan_status=row.scan_status,
        scan_signature=row.scan_signature,
    )


def finished(row: UploadSession) -> FinishResponse:
    """The answer to a Background Fetch's report: the session completed, and the words its browser UI ends with."""
    title = background_title(row.file_name, True, row.scan_status, row.scan_signature)
    return FinishResponse(**completed(row).model_dump(), title=title)
