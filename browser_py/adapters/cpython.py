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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from wire.view import UploadView

from ..api import PresignApi
from ..driver import UploadDriver, ViewListener
from ..engine.commands import HashPart, SendPart
from ..engine.config import EngineConfig
from ..engine.failures import Failure, FailureKind, check_part_answer, classify_storage_response, network_failure
from ..engine.fingerprint import fingerprint, sample_ranges
from ..engine.manifest import Manifest, ManifestError
from ..engine.telemetry import Telemetry
from ..engine.uploadset import Deliver, Directive, Say, UploadSet
from ..ports import SendFailed, TransportError
from ..reporting import Reporter


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
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200:
            raise SendFailed(classify_storage_response(response.status_code, response.text, content_type))
        etag: str | None = response.headers.get("etag")
        not_stored = check_part_answer(etag, content_type, response.text)
        if not_stored is not None or etag is None:
            raise SendFailed(not_stored or network_failure("no ETag"))
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
    view: UploadView
    resumed: bool

    @property
    def ok(self) -> bool:
        return self.view.phase == "completed"


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


class _Runner:
    """Carries out the set's directives for the terminal: one driver per file, a task per running driver."""

    def __init__(self, uploads: UploadSet, clock: Callable[[], float], on_notice: Callable[[str], None]) -> None:
        self.uploads = uploads
        self.clock = clock
        self.on_notice = on_notice
        self.drivers: dict[str, UploadDriver] = {}
        self.tasks: dict[str, asyncio.Task[UploadView]] = {}
        self.views: dict[str, UploadView] = {}
        self.changed = asyncio.Event()

    def carry_out(self, directives: Iterable[Directive]) -> None:
        for directive in directives:
            if isinstance(directive, Deliver):
                self.drivers[directive.local_id].post(directive.event)
                self._run(directive.local_id)
            elif isinstance(directive, Say):
                self.on_notice(directive.message)

    def published(self, view: UploadView) -> None:
        self.views[view.local_id] = view
        self.carry_out(self.uploads.published(view, self.clock()))

    def _run(self, local_id: str) -> None:
        task = self.tasks.get(local_id)
        if task is None or task.done():
            self.tasks[local_id] = asyncio.ensure_future(self.drivers[local_id].run())
            self.tasks[local_id].add_done_callback(lambda _t: self.changed.set())

    async def until_settled(self) -> None:
        """Until no driver runs and the queue starts nothing more (every file finished, failed or paused)."""
        while any(not t.done() for t in self.tasks.values()):
            self.changed.clear()
            await self.changed.wait()
            for local_id, task in self.tasks.items():
                if task.done():
                    self.views[local_id] = task.result()
                    self.uploads.run_ended(local_id)
            self.carry_out(self.uploads.admit(self.clock()))


async def upload_files(
    paths: Sequence[Path],
    server_url: str,
    state_dir: Path,
    *,
    config: EngineConfig | None = None,
    on_view: ViewListener | None = None,
    on_notice: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
    storage_transport: httpx.AsyncBaseTransport | None = None,
) -> list[UploadResult]:
    """Upload ``paths`` with the browser's policy for many files (a few at a time, the same file once), resuming
    unfinished uploads of the same files found in ``state_dir``. One result per distinct file, in order.

    ``transport``/``storage_transport`` are the test seam (httpx's MockTransport, or a fault-injecting one).
    """
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is not a readable file")
    store = DirectoryManifestStore(state_dir / "manifests")
    saved = store.load_all()
    uploads = UploadSet(config or EngineConfig())
    cookies = CookieFile(state_dir / "cookies.json")
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    timeout = httpx.Timeout(60.0, connect=10.0)
    async with (
        httpx.AsyncClient(base_url=server_url, transport=transport, timeout=timeout) as service,
        httpx.AsyncClient(transport=storage_transport, limits=limits, timeout=timeout) as storage,
    ):
        cookies.load(service)
        api = PresignApi(HttpxJson(service), clock)
        reporter = Reporter(Telemetry(), HttpxJson(service), clock)
        runner = _Runner(uploads, clock, on_notice or (lambda _message: None))

        def published(view: UploadView) -> None:
            runner.published(view)
            if on_view is not None:
                on_view(view)

        order: list[tuple[str, bool]] = []
        for path in paths:
            fp = file_fingerprint(path)
            existing = uploads.same_file(fp)
            if existing is not None:
                runner.carry_out(uploads.picked_again(existing, clock()))
                continue
            manifest = next((m for m in saved if m.fingerprint == fp and not m.completed), None)
            if manifest is not None:
                uploads.recover([manifest], clock())
                if manifest.session_id:
                    reporter.telemetry.resumed(manifest.local_id, manifest.session_id, clock(), "restart")
            else:
                manifest = _new_manifest(path, fp, clock())
                await store.save(manifest.local_id, manifest.to_json())
                uploads.add(manifest, source_readable=True)
            upload = uploads.uploads[manifest.local_id]
            sender = FilePartSender(path, storage)
            driver = UploadDriver(upload, api, sender, store, clock, published)
            driver.observer = reporter.observer(upload)
            runner.drivers[manifest.local_id] = driver
            order.append((manifest.local_id, manifest.session_id is not None))
        try:
            runner.carry_out(uploads.admit(clock()))
            await runner.until_settled()
        finally:
            cookies.save(service)
            await reporter.drain()
    return [UploadResult(runner.views.get(i) or runner.drivers[i].upload.view(), resumed) for i, resumed in order]


def _new_manifest(path: Path, fp: str, now: float) -> Manifest:
    stat = path.stat()
    return Manifest(
        local_id=uuid.uuid4().hex,
        file_name=path.name,
        size=stat.st_size,
        content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        fingerprint=fp,
        last_modified_ms=stat.st_mtime_ns // 1_000_000,
        created_at=now,
        staged=True,  # a local file is its own staged copy
    )


async def upload_file(path: Path, server_url: str, state_dir: Path, **options: Any) -> UploadResult:
    """Upload one file (see :func:`upload_files`)."""
    (result,) = await upload_files([path], server_url, state_dir, **options)
    return result
