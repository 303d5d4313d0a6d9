"""CPython adapter: httpx for the service and S3, a local file as the source, JSON files as manifests.

It drives the very same core and driver as the browser, so integration tests of this adapter exercise the engine's
real decisions against the real server and SeaweedFS. Unlike the browser path, part bytes pass through Python here
(httpx needs them in memory to send a Content-Length), bounded by concurrency x part size.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import mimetypes
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..api import PresignApi
from ..driver import UploadDriver, ViewListener
from ..engine.commands import HashPart, SendPart
from ..engine.failures import Failure, FailureKind, classify_storage_response, network_failure
from ..engine.fingerprint import fingerprint, sample_ranges
from ..engine.manifest import Manifest, ManifestError
from ..engine.upload import EngineConfig, Upload
from ..ports import SendFailed, TransportError


class HttpxJson:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def request(
        self, method: str, path: str, body: Any | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        try:
            response = await self._client.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        if not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"detail": response.text[:500]}


class FilePartSender:
    """Reads each part from the file at send time (never keeping the whole file) and PUTs it."""

    def __init__(self, path: Path, client: httpx.AsyncClient) -> None:
        self._path = path
        self._client = client

    def _read(self, offset: int, length: int) -> bytes:
        with self._path.open("rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise SendFailed(Failure(FailureKind.FATAL, f"{self._path} changed size while uploading"))
        return data

    async def sha256(self, command: HashPart) -> str:
        def digest() -> str:
            return base64.b64encode(hashlib.sha256(self._read(command.offset, command.length)).digest()).decode()

        return await asyncio.to_thread(digest)

    async def send(self, command: SendPart) -> str:
        data = await asyncio.to_thread(self._read, command.offset, command.length)
        headers = {"x-amz-checksum-sha256": command.checksum_sha256}
        try:
            response = await self._client.put(command.url, content=data, headers=headers)
        except httpx.TransportError as exc:
            raise SendFailed(network_failure(str(exc) or type(exc).__name__)) from exc
        if response.status_code != 200:
            raise SendFailed(classify_storage_response(response.status_code, response.text))
        etag: str | None = response.headers.get("etag")
        if not etag:
            raise SendFailed(Failure(FailureKind.FATAL, "storage answered without an ETag"))
        return etag


class DirectoryManifestStore:
    """One ``<local_id>.json`` per upload, replaced atomically so a crash never leaves half a manifest."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, local_id: str) -> Path:
        return self.directory / f"{local_id}.json"

    async def save(self, local_id: str, manifest_json: str) -> None:
        path = self._path(local_id)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(manifest_json, encoding="utf-8")
        os.replace(tmp, path)

    async def discard(self, local_id: str) -> None:
        self._path(local_id).unlink(missing_ok=True)

    def load_all(self) -> list[Manifest]:
        manifests = []
        for path in sorted(self.directory.glob("*.json")):
            with contextlib.suppress(ManifestError, OSError):
                manifests.append(Manifest.from_json(path.read_text(encoding="utf-8")))
        return manifests


def file_fingerprint(path: Path) -> str:
    stat = path.stat()
    (h0, h1), (t0, t1) = sample_ranges(stat.st_size)
    with path.open("rb") as f:
        head = f.read(h1 - h0)
        f.seek(t0)
        tail = f.read(t1 - t0)
    return fingerprint(path.name, stat.st_size, stat.st_mtime_ns // 1_000_000, head, tail)


@dataclass(frozen=True, slots=True)
class UploadResult:
    view: dict[str, Any]
    resumed: bool

    @property
    def ok(self) -> bool:
        return bool(self.view["phase"] == "completed")


class CookieFile:
    """Keeps the service's identity cookie between runs, so a resumed upload is still ours."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, client: httpx.AsyncClient) -> None:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for name, value in saved.items():
            client.cookies.set(name, value)

    def save(self, client: httpx.AsyncClient) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(dict(client.cookies.items())), encoding="utf-8")
        self.path.chmod(0o600)


async def upload_file(
    path: Path,
    server_url: str,
    state_dir: Path,
    *,
    config: EngineConfig | None = None,
    on_view: ViewListener | None = None,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
    storage_transport: httpx.AsyncBaseTransport | None = None,
) -> UploadResult:
    """Upload ``path``, resuming an unfinished upload of the same file found in ``state_dir``.

    ``transport``/``storage_transport`` are the test seam (httpx's MockTransport, or a fault-injecting one).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a readable file")
    store = DirectoryManifestStore(state_dir / "manifests")
    fp = file_fingerprint(path)
    manifest = next((m for m in store.load_all() if m.fingerprint == fp and not m.completed), None)
    resumed = manifest is not None
    if manifest is None:
        stat = path.stat()
        manifest = Manifest(
            local_id=uuid.uuid4().hex,
            file_name=path.name,
            size=stat.st_size,
            content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            fingerprint=fp,
            last_modified_ms=stat.st_mtime_ns // 1_000_000,
            created_at=clock(),
            staged=True,  # a local file is its own staged copy
        )
        await store.save(manifest.local_id, manifest.to_json())
    cookies = CookieFile(state_dir / "cookies.json")
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    timeout = httpx.Timeout(60.0, connect=10.0)
    async with (
        httpx.AsyncClient(base_url=server_url, transport=transport, timeout=timeout) as service,
        httpx.AsyncClient(transport=storage_transport, limits=limits, timeout=timeout) as storage,
    ):
        cookies.load(service)
        driver = UploadDriver(
            Upload(manifest, config),
            PresignApi(HttpxJson(service), clock),
            FilePartSender(path, storage),
            store,
            clock,
            on_view,
        )
        try:
            view = await driver.run()
        finally:
            cookies.save(service)
    return UploadResult(view, resumed)
