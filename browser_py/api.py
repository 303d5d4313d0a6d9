"""Client of the presign service: turns its JSON answers into core events and its errors into classified failures.

Bodies are built from, and answers read with, the typed contract in :mod:`wire.api`. An answer of the wrong shape
(a renamed or retyped field) is a FATAL failure naming the field: retrying cannot fix a server/client mismatch,
and the user needs to hear about it rather than watch eight "network error" retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

from wire.api import (
    CompletedPart,
    CompletedUpload,
    CompleteRequest,
    CreatedSession,
    CreateSessionRequest,
    JsonObject,
    PartChecksum,
    PartUrl,
    PresignUrlsRequest,
    SessionState,
    SignedUrls,
    WireError,
)

from .engine.commands import CompleteUpload, CreateSession, FetchState, RequestUrls
from .engine.events import ApiCall, RemotePart, SessionCreated, StateFetched, UploadCompleted, UrlsReceived
from .engine.failures import Failure, FailureKind, classify_api_response, network_failure
from .ports import CallFailed, JsonHttp, TransportError

UPLOADS = "/api/uploads"
UPLOAD_TOKEN_HEADER = "X-Upload-Token"

T = TypeVar("T")


class PresignApi:
    def __init__(self, http: JsonHttp, clock: Callable[[], float]) -> None:
        self._http = http
        self._clock = clock

    async def create_session(self, cmd: CreateSession) -> SessionCreated:
        request = CreateSessionRequest(
            file_name=cmd.file_name,
            size=cmd.size,
            content_type=cmd.content_type,
            fingerprint=cmd.fingerprint,
            checksum_algorithm=cmd.checksum_algorithm,
            part_size=cmd.part_size,
        )
        created = await self._call(ApiCall.CREATE, CreatedSession.from_json, "POST", UPLOADS, request.to_json())
        return SessionCreated(
            now=self._clock(),
            session_id=created.session_id,
            object_key=created.object_key,
            part_size=created.part_size,
            part_count=created.part_count,
            urls=_urls(created.urls),
            expires_at=created.urls_expire_at,
            upload_token=created.upload_token,
            server_now=created.server_now,
        )

    async def fetch_state(self, cmd: FetchState) -> StateFetched:
        state = await self._call(
            ApiCall.STATE, SessionState.from_json, "GET", f"{UPLOADS}/{cmd.session_id}", token=cmd.upload_token
        )
        parts = tuple(RemotePart(p.part_number, p.etag, p.size) for p in state.parts)
        return StateFetched(
            now=self._clock(),
            status=state.status,
            parts=parts,
            scan_status=state.scan_status,
            scan_signature=state.scan_signature,
        )

    async def request_urls(self, cmd: RequestUrls) -> UrlsReceived:
        request = PresignUrlsRequest(tuple(PartChecksum(n, checksum) for n, checksum in cmd.parts), cmd.background)
        signed = await self._call(
            ApiCall.URLS,
            SignedUrls.from_json,
            "POST",
            f"{UPLOADS}/{cmd.session_id}/urls",
            request.to_json(),
            token=cmd.upload_token,
        )
        return UrlsReceived(
            now=self._clock(),
            urls=_urls(signed.urls),
            expires_at=signed.expires_at,
            server_now=signed.server_now,
            background=cmd.background,
        )

    async def complete(self, cmd: CompleteUpload) -> UploadCompleted:
        request = CompleteRequest(tuple(CompletedPart(n, etag) for n, etag in cmd.parts))
        done = await self._call(
            ApiCall.COMPLETE,
            CompletedUpload.from_json,
            "POST",
            f"{UPLOADS}/{cmd.session_id}/complete",
            request.to_json(),
            token=cmd.upload_token,
        )
        return UploadCompleted(
            now=self._clock(), etag=done.etag, scan_status=done.scan_status, scan_signature=done.scan_signature
        )

    async def abort(self, session_id: str, upload_token: str = "") -> None:
        """Abort answers 204 with no body: there is nothing to read."""
        await self._exchange(ApiCall.ABORT, "DELETE", f"{UPLOADS}/{session_id}", token=upload_token)

    async def already_uploaded(self, fingerprint: str) -> bool:
        """Whether an upload of this file already completed, so the page can say so instead of sending it again.

        Best effort: any answer but a non-empty list means "not known"; a TransportError (offline) reaches the caller,
        which uploads anyway.
        """
        query = f"status=completed&fingerprint={quote(fingerprint, safe='')}"
        status, answer = await self._http.request("GET", f"{UPLOADS}?{query}")
        return status == 200 and isinstance(answer, list) and bool(answer)

    async def _call(
        self,
        call: ApiCall,
        read: Callable[[object], T],
        method: str,
        path: str,
        body: JsonObject | None = None,
        token: str = "",
    ) -> T:
        """One call whose 2xx answer is read with ``read`` (a wire ``from_json``)."""
        status, answer = await self._exchange(call, method, path, body, token)
        if answer is None:
            # An empty body is what a proxy or a dropped connection leaves behind, not a server that changed.
            raise CallFailed(call, Failure(FailureKind.TRANSIENT, "upload service sent no JSON", status))
        try:
            return read(answer)
        except WireError as error:
            message = f"the upload service answered something unexpected: {error}"
            raise CallFailed(call, Failure(FailureKind.FATAL, message, status)) from error

    async def _exchange(
        self, call: ApiCall, method: str, path: str, body: JsonObject | None = None, token: str = ""
    ) -> tuple[int, Any]:
        """Send the request; return a 2xx answer, raise :class:`CallFailed` (classified) for anything else."""
        headers = {UPLOAD_TOKEN_HEADER: token} if token else None
        try:
            status, answer = await self._http.request(method, path, body, headers)
        except TransportError as exc:
            raise CallFailed(call, network_failure(str(exc))) from exc
        if 200 <= status < 300:
            return status, answer
        raise CallFailed(call, classify_api_response(status, _detail(answer)))


def _urls(urls: Iterable[PartUrl]) -> dict[int, str]:
    return {u.part_number: u.url for u in urls}


def _detail(answer: Any) -> str:
    if isinstance(answer, dict):
        detail = answer.get("detail")
        if isinstance(detail, str):
            return detail
        if detail is not None:
            return str(detail)
    return ""
