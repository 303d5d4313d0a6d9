"""Client of the presign service: turns its JSON answers into core events and its errors into classified failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .engine.commands import CompleteUpload, CreateSession, FetchState, RequestUrls
from .engine.events import ApiCall, RemotePart, SessionCreated, StateFetched, UploadCompleted, UrlsReceived
from .engine.failures import Failure, FailureKind, classify_api_response, network_failure
from .ports import CallFailed, JsonHttp, TransportError

UPLOADS = "/api/uploads"
UPLOAD_TOKEN_HEADER = "X-Upload-Token"


class PresignApi:
    def __init__(self, http: JsonHttp, clock: Callable[[], float]) -> None:
        self._http = http
        self._clock = clock

    async def create_session(self, cmd: CreateSession) -> SessionCreated:
        body = await self._call(
            ApiCall.CREATE,
            "POST",
            UPLOADS,
            {
                "file_name": cmd.file_name,
                "size": cmd.size,
                "content_type": cmd.content_type,
                "fingerprint": cmd.fingerprint,
                "checksum_algorithm": cmd.checksum_algorithm,
                **({"part_size": cmd.part_size} if cmd.part_size is not None else {}),
            },
        )
        return SessionCreated(
            now=self._clock(),
            session_id=body["session_id"],
            object_key=body["object_key"],
            part_size=int(body["part_size"]),
            part_count=int(body["part_count"]),
            urls=_urls(body["urls"]),
            expires_at=float(body["urls_expire_at"]),
            upload_token=str(body.get("upload_token") or ""),
        )

    async def fetch_state(self, cmd: FetchState) -> StateFetched:
        body = await self._call(ApiCall.STATE, "GET", f"{UPLOADS}/{cmd.session_id}", token=cmd.upload_token)
        parts = tuple(RemotePart(int(p["part_number"]), str(p["etag"]), int(p["size"])) for p in body.get("parts", []))
        return StateFetched(now=self._clock(), status=str(body["status"]), parts=parts)

    async def request_urls(self, cmd: RequestUrls) -> UrlsReceived:
        body = await self._call(
            ApiCall.URLS,
            "POST",
            f"{UPLOADS}/{cmd.session_id}/urls",
            {"parts": [{"part_number": n, "checksum_sha256": checksum} for n, checksum in cmd.parts]},
            token=cmd.upload_token,
        )
        return UrlsReceived(now=self._clock(), urls=_urls(body["urls"]), expires_at=float(body["expires_at"]))

    async def complete(self, cmd: CompleteUpload) -> UploadCompleted:
        body = await self._call(
            ApiCall.COMPLETE,
            "POST",
            f"{UPLOADS}/{cmd.session_id}/complete",
            {"parts": [{"part_number": n, "etag": etag} for n, etag in cmd.parts]},
            token=cmd.upload_token,
        )
        return UploadCompleted(now=self._clock(), etag=str(body.get("etag", "")))

    async def abort(self, session_id: str, upload_token: str = "") -> None:
        await self._call(ApiCall.ABORT, "DELETE", f"{UPLOADS}/{session_id}", token=upload_token)

    async def _call(self, call: ApiCall, method: str, path: str, body: Any | None = None, token: str = "") -> Any:
        headers = {UPLOAD_TOKEN_HEADER: token} if token else None
        try:
            status, answer = await self._http.request(method, path, body, headers)
        except TransportError as exc:
            raise CallFailed(call, network_failure(str(exc))) from exc
        if 200 <= status < 300:
            if call is not ApiCall.ABORT and not isinstance(answer, dict):
                raise CallFailed(call, Failure(FailureKind.TRANSIENT, "upload service sent no JSON", status))
            return answer
        raise CallFailed(call, classify_api_response(status, _detail(answer)))


def _urls(items: list[dict[str, Any]]) -> dict[int, str]:
    return {int(item["part_number"]): str(item["url"]) for item in items}


def _detail(answer: Any) -> str:
    if isinstance(answer, dict):
        detail = answer.get("detail")
        if isinstance(detail, str):
            return detail
        if detail is not None:
            return str(detail)
    return ""
