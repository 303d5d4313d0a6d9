"""Browser I/O for the Pyodide adapter: JSON calls to the service, and part bodies as Blob slices straight to fetch.

Parts are ``Blob.slice()`` of the staged OPFS file (or of the picked file while the copy is made) handed to ``fetch``
as the request body: Python only holds JavaScript references, never the bytes. Pyodide-only (imports ``js``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import js
from pyodide.ffi import JsException, to_js

from ..engine.commands import HashPart, SendPart
from ..engine.failures import (
    Failure,
    FailureKind,
    check_part_answer,
    classify_storage_response,
    network_failure,
)
from ..ports import SendFailed, TransportError


def js_object(value: dict[str, Any]) -> Any:
    """A JS object from a dict (fetch init, getFileHandle options): Pyodide would otherwise make a Map."""
    return to_js(value, dict_converter=js.Object.fromEntries)


async def bytes_of(blob: Any) -> bytes:
    """Small reads only (fingerprint samples): never used for part bodies."""
    return bytes((await blob.arrayBuffer()).to_py())


class FetchJson:
    """JSON calls to the presign service. Each gives up after ``timeout`` seconds: a call that never answers (a
    server stuck behind a restarting store) must come back as a transient failure to retry, not hang the upload."""

    def __init__(self, timeout: float = 120.0, base: str = "") -> None:
        self.timeout = timeout
        self.base = base.rstrip("/")  # the uploader's path prefix ("" at the origin's root; "/uploader" mounted)

    async def request(
        self, method: str, path: str, body: Any | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent_headers = dict(headers or {})
        init: dict[str, Any] = {
            "method": method,
            "credentials": "same-origin",
            "headers": sent_headers,
            "signal": js.AbortSignal.timeout(int(self.timeout * 1000)),
        }
        if body is not None:
            sent_headers["content-type"] = "application/json"
            init["body"] = json.dumps(body)
        try:
            response = await js.fetch(self.base + path, js_object(init))
            text = await response.text()
        except JsException as exc:
            raise TransportError(str(exc)) from exc
        if not text:
            return int(response.status), None
        try:
            return int(response.status), json.loads(text)
        except ValueError:
            return int(response.status), {"detail": text[:500]}


class BlobPartSender:
    """PUTs ``blob.slice(offset, end)`` to the presigned URL: the browser streams it from OPFS."""

    def __init__(self, blob: Any = None) -> None:
        self.blob = blob  # set once the staged copy is complete; the core sends nothing before

    def _slice(self, offset: int, length: int) -> Any:
        if self.blob is None:
            raise SendFailed(Failure(FailureKind.FATAL, "the file's bytes are not readable yet"))
        return self.blob.slice(offset, offset + length)

    async def sha256(self, command: HashPart) -> str:
        """WebCrypto hashes the slice in JavaScript memory; only the 32-byte digest reaches Python."""
        try:
            buffer = await self._slice(command.offset, command.length).arrayBuffer()
            digest = await js.crypto.subtle.digest("SHA-256", buffer)
        except JsException as exc:
            raise SendFailed(Failure(FailureKind.FATAL, f"could not read the file in this browser: {exc}")) from exc
        return base64.b64encode(bytes(js.Uint8Array.new(digest).to_py())).decode()

    async def send(self, command: SendPart) -> str:
        body = self._slice(command.offset, command.length)
        controller = js.AbortController.new()
        init = {
            "method": "PUT",
            "body": body,
            "signal": controller.signal,
            "headers": {"x-amz-checksum-sha256": command.checksum_sha256},
        }
        try:
            response = await js.fetch(command.url, js_object(init))
            status = int(response.status)
            text = await _text_or_empty(response)  # S3's 200 is empty; a portal's page is not
        except asyncio.CancelledError:
            controller.abort()  # cancelling the task (a stall, a pause) must stop the bytes and the answer too
            raise
        except JsException as exc:
            raise SendFailed(network_failure(str(exc))) from exc
        content_type = str(response.headers.get("content-type") or "")
        if status != 200:
            raise SendFailed(classify_storage_response(status, text, content_type))
        raw_etag = response.headers.get("ETag")
        etag = str(raw_etag) if raw_etag else None  # a missing header is JS null (Pyodide's jsnull, falsy)
        not_stored = check_part_answer(etag, content_type, text)
        if not_stored is not None or etag is None:
            raise SendFailed(not_stored or network_failure("no ETag"))
        return etag


async def _text_or_empty(response: Any) -> str:
    """The body of an error answer, for classifying it; an answer cut off midway says nothing more."""
    try:
        return str(await response.text())
    except JsException:
        return ""


