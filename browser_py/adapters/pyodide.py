"""Pyodide adapter: runs inside the module SharedWorker and carries out the engine's decisions with browser APIs.

It owns only I/O: the pages' MessagePorts, the picked ``File`` objects, OPFS (``adapters/opfs.py``) and fetch
(``adapters/fetch.py``), one :class:`~browser_py.driver.UploadDriver` per upload. Every decision about the set of
uploads (same file again, the queue, card actions, recovery, connectivity, the indicator) is
:class:`~browser_py.engine.uploadset.UploadSet`'s; every decision about one upload is the machine's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import js
from pyodide.ffi import JsException, create_once_callable, create_proxy

from wire.messages import (
    AddFiles,
    BackgroundDone,
    Bye,
    CardAction,
    ChooseFile,
    EngineError,
    EngineReady,
    HandOffAnswer,
    HandOffPart,
    HandOffRequest,
    Hello,
    MessageError,
    Notice,
    Removed,
    SetConnectivity,
    SummaryChanged,
    UploadChanged,
    UploadFinished,
    WorkerMessage,
    parse_page_message,
    to_json,
)
from wire.telemetry import BOOT_MODES
from wire.view import UploadView

from ..api import UPLOADS, PresignApi
from ..driver import UploadDriver
from ..engine.commands import HandOff
from ..engine.config import EngineConfig
from ..engine.events import Staged
from ..engine.fingerprint import fingerprint, sample_ranges
from ..engine.link import LinkMemory
from ..engine.manifest import Manifest
from ..engine.owner import (
    STORAGE_PATH,
    Holder,
    Nobody,
    Owner,
    Someone,
    StorageKeyError,
    holder_from_answer,
)
from ..engine.phase import Phase
from ..engine.telemetry import Telemetry
from ..engine.upload import Upload
from ..engine.uploadset import (
    Attach,
    Deliver,
    Directive,
    Forget,
    SaveLinkNote,
    Say,
    ShowSummary,
    Toast,
    UploadSet,
)
from ..ports import JsonHttp, TransportError
from ..reporting import Reporter
from .fetch import BlobPartSender, FetchJson, bytes_of
from .opfs import MemoryStore, OpfsStore

log = logging.getLogger(__name__)

LINK_NOTE = "link.json"  # LinkMemory: what earlier uploads measured of the link
#: Written when the last page said goodbye with uploads unfinished, cleared when a page comes back: uploads found
#: at the next start resumed because every tab was closed ("closed"), or because the browser died ("" or none).
CLOSED_NOTE = "closed.json"
#: The storage key of whoever was signed in last: whose uploads a worker started offline holds until it can ask.
OWNER_NOTE = "owner.json"


class OwnedHttp:
    """The service calls of one owner's uploads. A new session is created only after the engine asked who is signed
    in (it would belong to whoever is); a refusal that may only mean someone else is signed in now is not passed on
    as the upload's failure until the engine asked: if the owner changed, the call ends here (its upload is being
    put away, cancelled with it) and resumes with its owner."""

    def __init__(self, http: JsonHttp, hub: Hub, holder: Holder) -> None:
        self._http = http
        self._hub = hub
        self._holder = holder

    async def request(
        self, method: str, path: str, body: Any | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        if method == "POST" and path == UPLOADS:
            await self._still_ours(lately_will_do=True)
        status, answer = await self._http.request(method, path, body, headers)
        if Owner.may_mean_someone_else(status):
            await self._still_ours()
        return status, answer

    async def _still_ours(self, lately_will_do: bool = False) -> None:
        """``lately_will_do``: an answer the server gave within a second (the pick's own) will do (engine/owner.py)."""
        if not (lately_will_do and self._hub.owner.answered_lately(time.time())):
            # Shielded: a take-over cancels this call's task, and must not be cancelled half-way with it.
            check = asyncio.ensure_future(self._hub.check_owner())
            self._hub.keep(check)
            await asyncio.shield(check)
        if self._hub.owner.holder != self._holder:
            raise asyncio.CancelledError("its owner is not signed in")


class Hub:
    """All uploads of this browser profile, shared by every open page of the app."""

    def __init__(self, opfs: bool, boot_ms: float, config: EngineConfig, api_base: str = "") -> None:
        self.opfs = opfs  # False: OPFS is unavailable, files upload straight from the picked File
        self.store: OpfsStore | None = None  # the current owner's folder (None without OPFS)
        self.boot_ms = boot_ms
        self.config = config
        self.uploads = UploadSet(config)
        self.http = FetchJson(base=api_base)
        self.owner = Owner(Nobody())  # until take_over: nobody's uploads are shown or sent
        self.api = PresignApi(OwnedHttp(self.http, self, self.owner.holder), time.time)
        self.reporter = Reporter(Telemetry(), self.http, time.time)
        self._gate = asyncio.Lock()  # one question about the owner at a time; page messages wait for the answer
        self._generation = 0  # counts take-overs: a driver of an earlier owner never starts late
        self._running: dict[str, asyncio.Future[None]] = {}
        self.instance = uuid.uuid4().hex[:12]  # tells pages (and tests) a fresh worker from a long-lived one
        self.ports: list[Any] = []
        self.drivers: dict[str, UploadDriver] = {}
        self.senders: dict[str, BlobPartSender] = {}
        self.chosen: dict[str, Any] = {}  # files chosen again, until their upload says to copy them (SaveCopy)
        self.tasks: dict[str, asyncio.Future[None]] = {}
        self._listeners: list[Any] = []
        self._background: set[asyncio.Future[None]] = set()
        self._closed_noted = False
        # Hand-offs asked of a page and not answered yet: asked again of each page that connects meanwhile (the one
        # asked may have closed); a page registers under a Web Lock and answers for a registration that exists.
        self.hand_offs: dict[str, HandOffRequest] = {}

    # ---------------------------------------------------------------- pages

    def attach(self, port: Any) -> None:
        listener = create_proxy(lambda event: self._on_message(port, event.data))
        self._listeners.append(listener)  # kept alive for as long as the worker lives
        port.addEventListener("message", listener)
        start = getattr(port, "start", None)  # a MessagePort needs start(); a dedicated worker's scope has none
        if start is not None:
            start()
        self.ports.append(port)
        # Ready, with no cards yet: they follow the page's hello, once the engine asked who is signed in.
        self._send(port, self._hello(cards=False))

    def listen_connectivity(self, scope: Any) -> None:
        """The worker's own online/offline events (pages relay theirs too: either may fire first)."""
        for kind, online in (("online", True), ("offline", False)):
            listener = create_proxy(lambda _event, online=online: self.carry_out(self._set_online(online)))
            self._listeners.append(listener)
            scope.addEventListener(kind, listener)

    def _set_online(self, online: bool) -> list[Directive]:
        if online:  # someone else may have signed in while the worker could not ask
            self._background_task(self._as_owner(lambda: None))
        return self.uploads.set_online(online, time.time())

    def _hello(self, cards: bool = True) -> EngineReady:
        views = tuple(self.uploads.views.values()) if cards else ()
        return EngineReady(round(self.boot_ms), self.instance, self.opfs, views)

    # ---------------------------------------------------------------- whose uploads (engine/owner.py)

    async def ask_owner(self) -> Holder | None:
        """Who the server says is signed in; None when it cannot say now (offline, a failing server)."""
        try:
            status, answer = await self.http.request("GET", STORAGE_PATH)
            return holder_from_answer(status, answer)
        except (TransportError, StorageKeyError) as exc:
            log.warning("could not ask who is signed in: %s", exc)
            return None

    async def check_owner(self) -> None:
        """Ask; if someone else is signed in now, put the current uploads away and take theirs."""
        async with self._gate:
            await self._check_owner()

    async def _check_owner(self) -> None:
        if self.owner.seen(await self.ask_owner(), time.time()):
            await self.take_over(self.owner.holder)

    async def _as_owner(self, work: Callable[[], None]) -> None:
        """A page's message, once the engine knows whose uploads it may show and touch (in the order they came)."""
        async with self._gate:
            await self._check_owner()
            work()

    async def take_over(self, holder: Holder) -> None:
        """Put the current owner's uploads away (stopped, cards removed from every page; their manifests stay on disk
        as after a close) and take ``holder``'s: their folder, recovered and resumed as on a fresh start."""
        self.owner.holder = holder
        self._generation += 1
        for driver in self.drivers.values():
            driver.stop()
        for task in (*self.tasks.values(), *self._running.values()):
            task.cancel()
        for local_id in list(self.uploads.views):
            self.broadcast(Removed(local_id))
        before = self.uploads
        self.uploads = UploadSet(self.config, before.link)
        self.uploads.online = before.online
        self.uploads.keeps_running_for = before.keeps_running_for
        self.uploads.background_fetch = before.background_fetch
        self.drivers, self.senders, self.chosen, self.tasks, self._running = {}, {}, {}, {}, {}
        self.hand_offs = {}
        self.api = PresignApi(OwnedHttp(self.http, self, holder), time.time)
        self.store = None
        if self.opfs:
            try:
                self.store = await OpfsStore.open(holder.directory)
            except JsException as exc:
                self.broadcast(EngineError(f"could not open this browser's storage: {exc}"))
        if isinstance(holder, Someone):
            await self._save_note(OWNER_NOTE, holder.key)
        await self.boot()
        self.broadcast(SummaryChanged(self.uploads.summary()))

    def _send(self, port: Any, message: WorkerMessage) -> None:
        port.postMessage(to_json(message))

    def broadcast(self, message: WorkerMessage) -> None:
        for port in list(self.ports):
            self._send(port, message)

    def _on_message(self, port: Any, data: Any) -> None:
        keys = ("type", "local_id", "action", "online", "extended_lifetime", "background_fetch", "registration_id",
                "refused")
        fields = {key: getattr(data, key, None) for key in keys}
        files = list(getattr(data, "files", None) or [])
        listed = getattr(data, "background_ids", None)
        ids = None if listed is None else [str(i) for i in listed]
        try:
            message = parse_page_message({**fields, "files": files, "background_ids": ids})
        except MessageError as exc:
            self._send(port, EngineError(str(exc)))
            return
        match message:
            case Bye():
                if port in self.ports:
                    self.ports.remove(port)
                if not self.ports:
                    self._last_page_left()
            case Hello(extended_lifetime=extended, background_fetch=can, background_ids=running):
                if self._closed_noted:
                    self._closed_noted = False
                    self._background_task(self._save_note(CLOSED_NOTE, ""))

                def greet() -> None:
                    self.uploads.outlives_pages(extended)
                    self.carry_out(self.uploads.browser_takes_over(can, running, time.time()))
                    self._send(port, self._hello())
                    for request in list(self.hand_offs.values()):
                        self._send(port, request)

                self._background_task(self._as_owner(greet))
            case HandOffAnswer(registration_id=rid, refused=refused):
                self.hand_offs = {k: r for k, r in self.hand_offs.items() if r.registration_id != rid}
                self.carry_out(self.uploads.hand_off_answered(rid, refused, time.time()))
            case BackgroundDone(registration_id=rid):
                self.carry_out(self.uploads.background_ended(rid, time.time()))
            case AddFiles():
                self._background_task(self._as_owner(lambda: self._background_task(self.add_all(files))))
            case ChooseFile(local_id=local_id):
                self._background_task(self._as_owner(lambda: self._background_task(self.choose(local_id, files[0]))))
            case CardAction(local_id=local_id, action=action):
                self._background_task(
                    self._as_owner(lambda: self.carry_out(self.uploads.action(local_id, action, time.time())))
                )
            case SetConnectivity(online=online):
                self.carry_out(self._set_online(online))

    def _last_page_left(self) -> None:
        """Every page is gone: note the close if uploads are left to resume, then send what telemetry holds."""
        ended = (Phase.COMPLETED, Phase.CANCELLED, Phase.BLOCKED)
        unfinished = any(upload.phase not in ended for upload in self.uploads.uploads.values())
        self._closed_noted = self._closed_noted or unfinished
        self._background_task(self._note_close(unfinished))

    async def _note_close(self, unfinished: bool) -> None:
        if unfinished:
            await self._save_note(CLOSED_NOTE, "closed")
        await self.reporter.flush()

    def _background_task(self, work: Awaitable[None]) -> None:
        self.keep(asyncio.ensure_future(self._report(work)))

    def keep(self, task: asyncio.Future[None]) -> None:
        """Hold a task until it is done (the loop keeps only weak references)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _report(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:  # never lose an error silently inside the worker
            log.exception("upload task failed")
            self.broadcast(EngineError(f"{type(exc).__name__}: {exc}"))

    # ---------------------------------------------------------------- the set's directives

    def carry_out(self, directives: Iterable[Directive], picked: Any = None) -> None:
        """``picked``: the file just picked or chosen, for an ``Attach``."""
        for directive in directives:
            match directive:
                case Attach(local_id=local_id):
                    sender = self.senders.get(local_id)
                    if sender is not None and picked is not None:
                        sender.blob = picked  # the check of its parts reads it; nothing is sent before it passes
                        self.chosen[local_id] = picked
                case Deliver(local_id=local_id, event=event):
                    driver = self.drivers.get(local_id)
                    if driver is not None:
                        driver.post(event)
                        self._run(local_id)
                case Say(message=message, local_id=local_id):
                    self.broadcast(Notice(message, local_id))
                case Toast(local_id=local_id, message=message, link=link):
                    self.broadcast(UploadFinished(local_id, message, link))
                case ShowSummary(summary=summary):
                    self.broadcast(SummaryChanged(summary))
                case Forget(local_id=local_id):
                    self.chosen.pop(local_id, None)
                    self.drivers.pop(local_id, None)
                    self.senders.pop(local_id, None)
                    self.broadcast(Removed(local_id))
                case SaveLinkNote(text=text):
                    self._background_task(self._save_note(LINK_NOTE, text))

    def _ask_hand_off(self, command: HandOff) -> None:
        """Ask the page that connected last to register the hand-off (engine/handoff.py)."""
        parts = tuple(HandOffPart(p.number, p.offset, p.length, p.url, p.checksum_sha256) for p in command.parts)
        directory = self.owner.holder.directory  # the copy is in its owner's folder
        request = HandOffRequest(command.local_id, command.registration_id, command.title, parts, directory)
        self.hand_offs[command.local_id] = request
        if self.ports:
            self._send(self.ports[-1], request)

    def _published(self, view: UploadView) -> None:
        self.broadcast(UploadChanged(view))
        self.carry_out(self.uploads.published(view, time.time()))

    async def _save_note(self, name: str, text: str) -> None:
        """A hint only (what was measured of the link): a failed save is logged, not reported."""
        if self.store is not None:
            try:
                await self.store.write_note(name, text)
            except JsException as exc:
                log.warning("could not save %s: %s", name, exc)

    # ---------------------------------------------------------------- uploads

    async def boot(self) -> None:
        if self.store is None:
            return
        self.uploads.link = LinkMemory.from_json(await self.store.read_note(LINK_NOTE) or "")
        cause = "tab_closed" if await self.store.read_note(CLOSED_NOTE) == "closed" else "crash"
        manifests, damaged = await self.store.load_manifests()
        for name in damaged:
            self.broadcast(Notice(f"a saved upload ({name}) was damaged and was removed"))
        await self.store.remove_orphans({m.local_id for m in manifests})
        staged = {m.local_id: await self.store.staged_file(m.local_id) for m in manifests if m.staged}
        directives = self.uploads.recover(manifests, time.time())
        for manifest in manifests:
            if manifest.session_id and not manifest.completed and manifest.local_id in self.uploads.uploads:
                self.reporter.telemetry.resumed(manifest.local_id, manifest.session_id, time.time(), cause)
        for local_id, upload in self.uploads.uploads.items():
            self._driver(upload, BlobPartSender(staged.get(local_id)))
        self.carry_out(directives)
        for upload in list(self.uploads.uploads.values()):
            self._published(upload.view())  # every card, and the queue starts the oldest

    async def add_all(self, files: list[Any]) -> None:
        """Register the files in the order they were dropped (cards and queue follow it); copy them concurrently."""
        for file in files:
            staging = await self.add(file)
            if staging is not None:
                self._background_task(staging)

    async def choose(self, local_id: str, file: Any) -> None:
        """A file chosen with a card's "Choose the file again": the set takes it only if it is the same file."""
        fp = await _fingerprint(file)
        self.carry_out(self.uploads.choose(local_id, str(file.name), int(file.size), fp, time.time()), picked=file)

    def _copy_again(self, local_id: str) -> None:
        """The file chosen again passed its checks (the upload said ``SaveCopy``): save it in the browser again."""
        file = self.chosen.pop(local_id, None)
        upload = self.uploads.uploads.get(local_id)
        sender = self.senders.get(local_id)
        if file is not None and upload is not None and sender is not None and self.store is not None:
            self._background_task(self._stage(upload, sender, file))

    async def add(self, file: Any) -> Awaitable[None] | None:
        """Register one file (fingerprint, manifest, card); return the work that saves it in the browser, if any."""
        size, name, modified = int(file.size), str(file.name), int(file.lastModified)
        fp = await _fingerprint(file)
        existing = self.uploads.same_file(fp)
        if existing is not None:
            self.carry_out(self.uploads.picked_again(existing, time.time()), picked=file)
            return None
        try:
            if await self.api.already_uploaded(fp):
                self.carry_out(self.uploads.already_uploaded(name))
                return None
        except TransportError:
            pass  # offline: upload it; the server keeps both if it was a duplicate
        manifest = Manifest(uuid.uuid4().hex, name, size, str(file.type) or "application/octet-stream", fp,
                            last_modified_ms=modified, created_at=time.time())
        shortfall = await self.store.space_shortfall(size) if self.store is not None else None
        sender = BlobPartSender(file)  # the picked file is read until the browser's copy is complete
        upload = self.uploads.add(manifest, source_readable=True)
        driver = self._driver(upload, sender)
        if shortfall:
            self.carry_out(self.uploads.refuse(manifest.local_id, shortfall, time.time()))
            return None
        if self.store is None:
            # No OPFS: upload straight from the picked file; it cannot outlive this tab.
            manifest.staged = True
            self.broadcast(Notice(f"{name}: this browser cannot keep a copy, so keep this tab open until the "
                                  "upload is done"))
            self._published(upload.view())
            return None
        driver.save_manifest()  # in order with the upload's later versions; its session is created meanwhile
        self._published(upload.view())  # a card at once; the queue may start it while the copy is made
        return self._stage(upload, sender, file)

    async def _stage(self, upload: Upload, sender: BlobPartSender, file: Any) -> None:
        local_id = upload.manifest.local_id
        store = self.store
        assert store is not None
        try:
            staged = await store.stage(local_id, file, lambda: upload.phase is Phase.CANCELLED)
        except JsException as exc:
            reason = f"could not save the file in this browser: {exc}"
            self.carry_out(self.uploads.refuse(local_id, reason, time.time()))
            return
        if staged is not None:
            sender.blob = staged
            if store is self.store:  # its owner is still the one signed in
                self.carry_out([Deliver(local_id, Staged(time.time()))])

    def _driver(self, upload: Upload, sender: BlobPartSender) -> UploadDriver:
        store = self.store if self.store is not None else MemoryStore()
        local_id = upload.manifest.local_id
        driver = UploadDriver(upload, self.api, sender, store, time.time, self._published,
                              on_copy=lambda: self._copy_again(local_id), on_hand_off=self._ask_hand_off)
        driver.observer = self.reporter.observer(upload)
        self.drivers[upload.manifest.local_id] = driver
        self.senders[upload.manifest.local_id] = sender
        return driver

    def _run(self, local_id: str) -> None:
        """Make sure the driver's loop is running (it returns whenever the upload goes idle)."""
        task = self.tasks.get(local_id)
        if task is None or task.done():
            self.tasks[local_id] = asyncio.ensure_future(self._report(self._drive(local_id)))

    async def _drive(self, local_id: str) -> None:
        """Run the driver while holding this upload's Web Lock: two workers (an old and a new version, or a
        fallback worker) must never send the same upload at once. The lock waits while another holds it."""
        driver = self.drivers[local_id]
        generation = self._generation

        async def under_lock() -> None:
            await driver.run()
            self.uploads.run_ended(local_id)
            if local_id not in self.uploads.uploads:  # finished: its card stays, its driver goes
                self.drivers.pop(local_id, None)
                self.senders.pop(local_id, None)

        locks = getattr(js.navigator, "locks", None)
        if locks is None:
            await under_lock()
            return
        await locks.request(f"smartcat-upload:{local_id}", create_once_callable(lambda _lock: self._locked(
            local_id, generation, under_lock)))

    def _locked(self, local_id: str, generation: int, work: Callable[[], Awaitable[None]]) -> asyncio.Future[None]:
        """The upload's lock is ours: run it, unless its owner was put away while the lock was awaited."""
        if generation != self._generation:
            done: asyncio.Future[None] = asyncio.get_event_loop().create_future()
            done.set_result(None)
            return done
        task = asyncio.ensure_future(work())
        self._running[local_id] = task
        return task


async def _fingerprint(file: Any) -> str:
    size = int(file.size)
    (h0, h1), (t0, t1) = sample_ranges(size)
    head, tail = await bytes_of(file.slice(h0, h1)), await bytes_of(file.slice(t0, t1))
    return fingerprint(str(file.name), size, int(file.lastModified), head, tail)


def _mount_prefix(scope: Any) -> str:
    """Where the uploader is mounted: the worker runs from ``<prefix>/static/worker.mjs``, the API is at
    ``<prefix>/api`` (a host application may mount it under a path)."""
    location = getattr(scope, "location", None)
    if location is None:
        return ""
    return str(js.URL.new("..", location.href).pathname).rstrip("/")


async def start_hub(scope: Any, boot_ms: float, engine_settings: str = "{}", boot_mode: str = "plain") -> Hub:
    """Entry point called by worker.mjs once Pyodide and the engine are loaded; ``engine_settings`` is the JSON the
    server chose (leave threshold, parallel uploads, part size); ``boot_mode`` how Pyodide started (telemetry)."""
    random.seed()  # a memory snapshot would otherwise freeze the random state
    try:
        shared: OpfsStore | None = await OpfsStore.open()
    except (JsException, AttributeError):
        shared = None
    config = EngineConfig.from_settings(json.loads(engine_settings or "{}"))
    hub = Hub(shared is not None, float(boot_ms), config, _mount_prefix(scope))
    hub.reporter.telemetry.booted(boot_mode if boot_mode in BOOT_MODES else "plain", float(boot_ms) / 1000)
    hub.listen_connectivity(scope)
    holder = await hub.ask_owner()
    if holder is None:  # offline at start: whoever was signed in last, until the worker can ask
        noted = await shared.read_note(OWNER_NOTE) if shared is not None else None
        holder = holder_from_answer(200, {"key": noted or ""})
    hub.owner.seen(holder)
    await hub.take_over(hub.owner.holder)
    return hub
