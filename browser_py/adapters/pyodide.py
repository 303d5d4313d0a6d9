"""Pyodide adapter: runs inside the module SharedWorker and carries out the core's commands with browser APIs.

- The picked ``File`` is copied into OPFS (``uploads/<local_id>.bin``) in Blob slices: bytes go from Blob to OPFS
  without entering Python.
- Parts are ``Blob.slice()`` of the OPFS file handed straight to ``fetch`` as the request body: Python only holds
  JavaScript references, never the bytes.
- Manifests are JSON files beside the staged copies (``uploads/<local_id>.json``), replaced atomically by OPFS's
  ``createWritable()``/``close()``.
- Pages talk to the hub over MessagePorts: JSON strings out, plain objects (with ``File``s) in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import js
from pyodide.ffi import JsException, create_once_callable, create_proxy, to_js

from ..api import PresignApi
from ..driver import UploadDriver
from ..engine.commands import HashPart, SendPart
from ..engine.events import Cancel, Connectivity, Pause, Resume, SourceLost, Staged
from ..engine.failures import Failure, FailureKind, classify_storage_response, network_failure
from ..engine.fingerprint import fingerprint, sample_ranges
from ..engine.link import LinkMemory
from ..engine.manifest import Manifest, ManifestError
from ..engine.queue import Entry, to_start
from ..engine.space import space_shortfall
from ..engine.upload import EngineConfig, Phase, Upload
from ..engine.wording import completed_text, summary_text
from ..ports import SendFailed, TransportError

log = logging.getLogger(__name__)

UPLOAD_DIR = "uploads"
LINK_NOTE = "link.json"  # LinkMemory: what earlier uploads measured of the link
STAGE_SLICE = 8 * 1024 * 1024


def _obj(value: dict[str, Any]) -> Any:
    """A JS object from a dict (fetch init, getFileHandle options): Pyodide would otherwise make a Map."""
    return to_js(value, dict_converter=js.Object.fromEntries)


async def _bytes_of(blob: Any) -> bytes:
    """Small reads only (fingerprint samples): never used for part bodies."""
    return bytes((await blob.arrayBuffer()).to_py())


class FetchJson:
    """JSON calls to the presign service. Each gives up after ``timeout`` seconds: a call that never answers (a
    server stuck behind a restarting store) must come back as a transient failure to retry, not hang the upload."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout

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
            response = await js.fetch(path, _obj(init))
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
            response = await js.fetch(command.url, _obj(init))
            status = int(response.status)
            text = "" if status == 200 else await _text_or_empty(response)
        except asyncio.CancelledError:
            controller.abort()  # cancelling the task (a stall, a pause) must stop the bytes and the answer too
            raise
        except JsException as exc:
            raise SendFailed(network_failure(str(exc))) from exc
        if status != 200:
            raise SendFailed(classify_storage_response(status, text))
        etag = response.headers.get("ETag")
        if not etag:
            raise SendFailed(
                Failure(FailureKind.FATAL, "storage did not expose the ETag (check the bucket's CORS rule)")
            )
        return str(etag)


async def _text_or_empty(response: Any) -> str:
    """The body of an error answer, for classifying it; an answer cut off midway says nothing more."""
    try:
        return str(await response.text())
    except JsException:
        return ""


class OpfsStore:
    """Staged copies and manifests in the Origin Private File System."""

    def __init__(self, directory: Any, root: Any = None) -> None:
        self._dir = directory
        self._root = root

    @classmethod
    async def open(cls) -> OpfsStore:
        root = await js.navigator.storage.getDirectory()
        return cls(await root.getDirectoryHandle(UPLOAD_DIR, _obj({"create": True})), root)

    async def read_note(self, name: str) -> str | None:
        """A small file of the engine's own beside the uploads folder (which holds only uploads), or None."""
        if self._root is None:
            return None
        try:
            handle = await self._root.getFileHandle(name)
            return str(await (await handle.getFile()).text())
        except JsException:
            return None

    async def write_note(self, name: str, text: str) -> None:
        if self._root is None:
            return
        handle = await self._root.getFileHandle(name, _obj({"create": True}))
        writable = await handle.createWritable()
        await writable.write(text)
        await writable.close()

    async def _write(self, name: str, data: Any) -> None:
        handle = await self._dir.getFileHandle(name, _obj({"create": True}))
        writable = await handle.createWritable()
        await writable.write(data)
        await writable.close()

    async def save(self, local_id: str, manifest_json: str) -> None:
        await self._write(f"{local_id}.json", manifest_json)

    async def discard(self, local_id: str) -> None:
        for name in (f"{local_id}.bin", f"{local_id}.json"):
            with contextlib.suppress(JsException):
                await self._dir.removeEntry(name)

    async def names(self) -> list[str]:
        names = []
        async for name in self._dir.keys():
            names.append(str(name))
        return names

    async def load_manifests(self) -> tuple[list[Manifest], list[str]]:
        """Every readable manifest, plus the names of damaged ones (reported, then removed)."""
        manifests, damaged = [], []
        for name in await self.names():
            if not name.endswith(".json"):
                continue
            try:
                handle = await self._dir.getFileHandle(name)
                text = str(await (await handle.getFile()).text())
                manifests.append(Manifest.from_json(text))
            except (JsException, ManifestError) as exc:
                log.warning("manifest %s unreadable: %s", name, exc)
                damaged.append(name)
        return manifests, damaged

    async def remove_orphans(self, keep: set[str]) -> None:
        """Staged copies whose manifest is gone can never be resumed: reclaim the space."""
        for name in await self.names():
            stem = name.rsplit(".", 1)[0]
            if stem not in keep:
                with contextlib.suppress(JsException):
                    await self._dir.removeEntry(name)

    async def staged_file(self, local_id: str) -> Any:
        handle = await self._dir.getFileHandle(f"{local_id}.bin")
        return await handle.getFile()

    async def stage(self, local_id: str, file: Any, cancelled: Callable[[], bool]) -> Any:
        """Copy ``file`` into OPFS slice by slice (no bytes through Python); return the staged ``File``.

        Returns None when ``cancelled()`` turns true meanwhile (the partial copy is dropped).
        """
        handle = await self._dir.getFileHandle(f"{local_id}.bin", _obj({"create": True}))
        writable = await handle.createWritable()
        try:
            size = int(file.size)
            offset = 0
            while offset < size:
                if cancelled():
                    await writable.abort()
                    return None
                end = min(size, offset + STAGE_SLICE)
                await writable.write(file.slice(offset, end))
                offset = end
            await writable.close()
        except BaseException:
            with contextlib.suppress(JsException):
                await writable.abort()
            raise
        return await handle.getFile()


class MemoryStore:
    """Manifests kept in memory only: for browsers without OPFS, where closing the tab loses the upload anyway."""

    async def save(self, local_id: str, manifest_json: str) -> None:
        return None

    async def discard(self, local_id: str) -> None:
        return None


class Hub:
    """All uploads of this browser profile, shared by every open page of the app."""

    def __init__(
        self, store: OpfsStore | None, boot_ms: float, config: EngineConfig, adaptive_part_size: bool = False
    ) -> None:
        self.store = store  # None: OPFS is unavailable, files upload straight from the picked File
        self.boot_ms = boot_ms
        self.config = config
        self.adaptive_part_size = adaptive_part_size
        self.link = LinkMemory()  # what earlier uploads measured: sizes the parts of the next one
        self.http = FetchJson()
        self.api = PresignApi(self.http, time.time)
        self.instance = uuid.uuid4().hex[:12]  # tells pages (and tests) a fresh worker from a long-lived one
        self.ports: list[Any] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.drivers: dict[str, UploadDriver] = {}
        self.tasks: dict[str, asyncio.Future[None]] = {}
        self.online = True
        self._listeners: list[Any] = []
        self._background: set[asyncio.Future[None]] = set()

    # ---------------------------------------------------------------- pages

    def attach(self, port: Any) -> None:
        listener = create_proxy(lambda event: self._on_message(port, event.data))
        self._listeners.append(listener)  # kept alive for as long as the worker lives
        port.addEventListener("message", listener)
        start = getattr(port, "start", None)  # a MessagePort needs start(); a dedicated worker's scope has none
        if start is not None:
            start()
        self.ports.append(port)
        self._send(port, self._hello())

    def listen_connectivity(self, scope: Any) -> None:
        """The worker's own online/offline events (pages relay theirs too: either may fire first)."""
        for kind, online in (("online", True), ("offline", False)):
            listener = create_proxy(lambda _event, online=online: self.set_online(online))
            self._listeners.append(listener)
            scope.addEventListener(kind, listener)

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "engine",
            "status": "ready",
            "boot_ms": round(self.boot_ms),
            "instance": self.instance,
            "persistent": self.store is not None,
            "uploads": list(self.views.values()),
        }

    def _send(self, port: Any, message: dict[str, Any]) -> None:
        port.postMessage(json.dumps(message))

    def broadcast(self, message: dict[str, Any]) -> None:
        for port in list(self.ports):
            self._send(port, message)

    def notice(self, message: str, local_id: str | None = None) -> None:
        """A one-off message for the user (not an upload state): "already uploaded", "not enough space"..."""
        self.broadcast({"type": "notice", "message": message, "local_id": local_id})

    def _publish(self, view: dict[str, Any]) -> None:
        before = self.views.get(view["local_id"])
        self.views[view["local_id"]] = view
        self.broadcast({"type": "upload", "view": view})
        if view["phase"] == Phase.COMPLETED.value and (before is None or before["phase"] != Phase.COMPLETED.value):
            link = f"/files/{view['session_id']}" if view["session_id"] else None
            self.broadcast({"type": "completed", "local_id": view["local_id"], "message":
                            completed_text(view["file_name"]), "link": link})
        self.broadcast(self._summary())
        self._schedule()

    def _summary(self) -> dict[str, Any]:
        finished = (Phase.COMPLETED.value, Phase.CANCELLED.value)
        active = [v for v in self.views.values() if v["phase"] not in finished]
        size = sum(v["size"] for v in active)
        percent = 100.0 * sum(v["bytes_confirmed"] for v in active) / size if size else 0.0
        return {"type": "summary", "active": len(active), "percent": round(percent, 1),
                "text": summary_text(len(active), percent)}

    def _phase_for_queue(self, local_id: str, driver: UploadDriver) -> Phase:
        """A driver whose loop was just started has not handled Start yet, but it holds a place already."""
        task = self.tasks.get(local_id)
        if driver.upload.phase is Phase.NEW and task is not None and not task.done():
            return Phase.CREATING
        return driver.upload.phase

    def _schedule(self) -> None:
        """Start queued uploads while fewer than ``parallel_uploads`` run (the policy is in the engine)."""
        entries = [
            Entry(local_id, self._phase_for_queue(local_id, driver), driver.upload.manifest.created_at)
            for local_id, driver in self.drivers.items()
        ]
        for local_id in to_start(entries, self.config.parallel_uploads):
            self._run(local_id)

    def _on_message(self, port: Any, data: Any) -> None:
        kind = str(getattr(data, "type", ""))
        if kind == "bye":
            if port in self.ports:
                self.ports.remove(port)
        elif kind == "hello":
            self._send(port, self._hello())
        elif kind == "add":
            self._background_task(self.add_all(list(data.files)))
        elif kind == "action":
            self.act(str(data.local_id), str(data.action))
        elif kind == "connectivity":
            self.set_online(bool(data.online))
        else:
            self._send(port, {"type": "error", "message": f"unknown message type {kind!r}"})

    def _background_task(self, work: Any) -> None:
        task = asyncio.ensure_future(self._report(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _report(self, work: Any) -> None:
        try:
            await work
        except Exception as exc:  # never lose an error silently inside the worker
            log.exception("upload task failed")
            self.broadcast({"type": "error", "message": f"{type(exc).__name__}: {exc}"})

    # ---------------------------------------------------------------- uploads

    async def boot(self) -> None:
        if self.store is None:
            return
        self.link = LinkMemory.from_json(await self.store.read_note(LINK_NOTE) or "")
        manifests, damaged = await self.store.load_manifests()
        for name in damaged:
            self.notice(f"a saved upload ({name}) was damaged and was removed")
        await self.store.remove_orphans({m.local_id for m in manifests})
        for manifest in sorted(manifests, key=lambda m: m.created_at):
            sender = BlobPartSender()
            driver = self._driver(manifest, sender)
            if manifest.staged:
                sender.blob = await self.store.staged_file(manifest.local_id)
                self._publish(driver.upload.view())
            else:
                reason = "the browser's copy of this file is incomplete; pick the file again"
                await driver.deliver(SourceLost(time.time(), reason))
        self._schedule()

    def _same_file(self, fp: str) -> UploadDriver | None:
        for driver in self.drivers.values():
            if driver.upload.manifest.fingerprint == fp and driver.upload.phase is not Phase.CANCELLED:
                return driver
        return None

    async def _already_uploaded(self, fp: str) -> bool:
        status, answer = await self.http.request("GET", f"/api/uploads?status=completed&fingerprint={fp}")
        return status == 200 and isinstance(answer, list) and bool(answer)

    async def add_all(self, files: list[Any]) -> None:
        """Register the files in the order they were dropped (cards and queue follow it); copy them concurrently."""
        for file in files:
            staging = await self.add(file)
            if staging is not None:
                self._background_task(staging)

    async def add(self, file: Any) -> Any:
        """Register one file (fingerprint, manifest, card); return the work that saves and starts it, if any."""
        size = int(file.size)
        (h0, h1), (t0, t1) = sample_ranges(size)
        head, tail = await _bytes_of(file.slice(h0, h1)), await _bytes_of(file.slice(t0, t1))
        name, modified = str(file.name), int(file.lastModified)
        fp = fingerprint(name, size, modified, head, tail)
        existing = self._same_file(fp)
        if existing is not None:
            # The same file again: continue the upload we have instead of starting a second one.
            lost = existing.upload.error is not None and existing.upload.error.kind is FailureKind.SOURCE_LOST
            if existing.upload.phase in (Phase.PAUSED, Phase.FAILED) and not lost:
                existing.post(Resume(time.time()))
                self._run(existing.upload.manifest.local_id)
            self.notice(f"{name} is already in your uploads", existing.upload.manifest.local_id)
            return None
        try:
            if await self._already_uploaded(fp):
                self.notice(f"{name} was already uploaded")
                return None
        except TransportError:
            pass  # offline: upload it; the server keeps both if it was a duplicate
        manifest = Manifest(
            local_id=uuid.uuid4().hex,
            file_name=name,
            size=size,
            content_type=str(file.type) or "application/octet-stream",
            fingerprint=fp,
            last_modified_ms=modified,
            created_at=time.time(),
        )
        shortfall = await self._space_shortfall(size) if self.store is not None else None
        sender = BlobPartSender(file)  # the picked file is read until the browser's copy is complete
        part_size = self.config.part_size
        if self.adaptive_part_size:
            part_size = self.link.part_size(size, part_size)
        driver = self._driver(manifest, sender, part_size)
        if shortfall:
            await driver.deliver(SourceLost(time.time(), shortfall))
            return None
        self._publish(driver.upload.view())  # a card at once, even while queued
        if self.store is None:
            # No OPFS: upload straight from the picked file; it cannot outlive this tab.
            manifest.staged = True
            sender.blob = file
            self.notice(f"{name}: this browser cannot keep a copy, so keep this tab open until the upload is done")
            self._schedule()
            return None
        await self.store.save(manifest.local_id, manifest.to_json())
        self._schedule()  # when it may start now, the session is created while the copy is made
        return self._stage(driver, sender, file)

    async def _stage(self, driver: UploadDriver, sender: BlobPartSender, file: Any) -> None:
        manifest = driver.upload.manifest
        assert self.store is not None
        try:
            staged = await self.store.stage(manifest.local_id, file, lambda: driver.upload.phase is Phase.CANCELLED)
        except JsException as exc:
            await self._deliver(driver, SourceLost(time.time(), f"could not save the file in this browser: {exc}"))
            return
        if staged is None:
            return
        sender.blob = staged
        await self._deliver(driver, Staged(time.time()))

    async def _deliver(self, driver: UploadDriver, event: Any) -> None:
        """A queued upload handles the event in place (it must not start); a running one gets it in its loop."""
        if driver.upload.phase is Phase.NEW:
            await driver.deliver(event)
            self._schedule()
        else:
            driver.post(event)
            self._run(driver.upload.manifest.local_id)

    async def _space_shortfall(self, size: int) -> str | None:
        """A message when the browser's storage quota cannot hold a copy of the file, else None."""
        try:
            estimate = await js.navigator.storage.estimate()
            quota, usage = int(estimate.quota), int(estimate.usage)
        except (JsException, AttributeError, TypeError, ValueError):
            return None  # no estimate: try, and report a write failure if it comes
        return space_shortfall(size, quota, usage)

    def set_online(self, online: bool) -> None:
        if online == self.online:
            return
        self.online = online
        now = time.time()
        for local_id, driver in list(self.drivers.items()):
            driver.post(Connectivity(now, online))
            self._run(local_id)

    def _driver(self, manifest: Manifest, sender: BlobPartSender, part_size: int | None = None) -> UploadDriver:
        config = self.config if part_size is None else dataclasses.replace(self.config, part_size=part_size)
        driver = UploadDriver(
            Upload(manifest, config, random.Random(), source_readable=sender.blob is not None),
            self.api,
            sender,
            self.store if self.store is not None else MemoryStore(),
            time.time,
            self._publish,
        )
        self.drivers[manifest.local_id] = driver
        if not self.online:
            driver.post(Connectivity(time.time(), False))
        return driver

    def _run(self, local_id: str) -> None:
        """Make sure the driver's loop is running (it returns whenever the upload goes idle)."""
        task = self.tasks.get(local_id)
        if task is not None and not task.done():
            return
        driver = self.drivers[local_id]
        self.tasks[local_id] = asyncio.ensure_future(self._report(self._drive(local_id, driver)))

    async def _drive(self, local_id: str, driver: UploadDriver) -> None:
        """Run the driver while holding this upload's Web Lock: two workers (an old and a new version, or a
        fallback worker) must never send the same upload at once. The lock waits while another holds it."""

        async def under_lock() -> None:
            view = await driver.run()
            if view["phase"] in (Phase.COMPLETED.value, Phase.CANCELLED.value):
                self.drivers.pop(local_id, None)
            if view["phase"] == Phase.COMPLETED.value:
                await self._learn_link(driver)

        def with_lock(_lock: Any) -> Any:
            return asyncio.ensure_future(under_lock())

        locks = getattr(js.navigator, "locks", None)
        if locks is None:
            await under_lock()
            return
        await locks.request(f"smartcat-upload:{local_id}", create_once_callable(with_lock))

    async def _learn_link(self, driver: UploadDriver) -> None:
        """Remember what this upload measured of the link; it is only a hint, so a failed save is just logged."""
        rate, error_rate = driver.upload.link_measurement()
        self.link.remember(rate, error_rate)
        if self.store is not None:
            try:
                await self.store.write_note(LINK_NOTE, self.link.to_json())
            except JsException as exc:
                log.warning("could not save what was measured of the link: %s", exc)

    def act(self, local_id: str, action: str) -> None:
        driver = self.drivers.get(local_id)
        if action == "dismiss":
            if driver is None or driver.upload.is_idle:
                self.views.pop(local_id, None)
                self.drivers.pop(local_id, None)
                self.broadcast({"type": "removed", "local_id": local_id})
            return
        if driver is None:
            self.notice(f"no upload {local_id}")
            return
        now = time.time()
        if action == "cancel" and driver.upload.phase is Phase.NEW:
            self._background_task(self._deliver(driver, Cancel(now)))
            return
        if action == "pause":
            driver.post(Pause(now))
        elif action in ("resume", "retry"):
            driver.post(Resume(now))
        elif action == "cancel":
            driver.post(Cancel(now))
        else:
            self.notice(f"unknown action {action!r}")
            return
        self._run(local_id)


async def start_hub(scope: Any, boot_ms: float, engine_settings: str = "{}") -> Hub:
    """Entry point called by worker.mjs once Pyodide and the engine are loaded; ``engine_settings`` is the JSON the
    server chose (leave threshold, parallel uploads, part size)."""
    random.seed()  # a memory snapshot would otherwise freeze the random state
    try:
        store: OpfsStore | None = await OpfsStore.open()
    except (JsException, AttributeError):
        store = None
    chosen = json.loads(engine_settings or "{}")
    defaults = EngineConfig()
    config = EngineConfig(
        leave_threshold=float(chosen.get("leave_threshold", defaults.leave_threshold)),
        parallel_uploads=int(chosen.get("parallel_uploads", defaults.parallel_uploads)),
        part_size=int(chosen["part_size"]) if chosen.get("part_size") else defaults.part_size,
        adaptive_concurrency=bool(chosen.get("adaptive_concurrency", defaults.adaptive_concurrency)),
    )
    hub = Hub(store, float(boot_ms), config, adaptive_part_size=bool(chosen.get("adaptive_part_size", False)))
    hub.listen_connectivity(scope)
    await hub.boot()
    return hub
