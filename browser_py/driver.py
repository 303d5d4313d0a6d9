"""The async loop that drives one :class:`~browser_py.engine.upload.Upload`: feeds events, executes commands.

It is the same code in Pyodide (asyncio on the browser's event loop) and in CPython; only the role implementations
differ. Part PUTs and service calls run as tasks that post their outcome back as events. Manifests are saved in the
background by :class:`ManifestWriter`, newest first: in the browser a save queues behind the copy being written to
the same storage, and a PUT waits for one only when the machine says it must (``PersistManifest.before_parts``: the
checksums a resume needs are on disk before any byte they describe is sent), while the URL request goes on beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from wire.view import UploadView

from .api import PresignApi
from .engine.commands import (
    AbortUpload,
    CancelParts,
    Command,
    CompleteUpload,
    CreateSession,
    DiscardLocal,
    FetchState,
    HandOff,
    HashPart,
    PersistManifest,
    Publish,
    RequestUrls,
    SaveCopy,
    SendPart,
    Wakeup,
)
from .engine.events import ApiCall, Event, PartFailed, PartHashed, PartSent, RequestFailed, Tick
from .engine.failures import Failure, FailureKind, network_failure
from .engine.phase import IllegalEvent
from .engine.upload import Upload
from .ports import CallFailed, ManifestStore, PartSender, SendFailed

log = logging.getLogger(__name__)

ViewListener = Callable[[UploadView], None]
CopyStarter = Callable[[], None]
#: Shown every event the machine handled with the commands it answered (telemetry: engine/telemetry.py).
EventObserver = Callable[[Event, list[Command]], None]
HandOffAsker = Callable[[HandOff], None]
#: Why a part is not sent when the progress it depends on could not be saved (follows "Action needed: ").
MANIFEST_NOT_SAVED = "could not save this upload's progress in the browser"


class ManifestWriter:
    """Saves one upload's manifest in the background; a newer version replaces one not yet written.

    Every saved version was true when it was made (parts S3 confirmed, the session), so a lagging save only means a
    resume asks S3 about a few more parts. A failed save is logged and raised again by the next :meth:`flush`.
    """

    def __init__(self, store: ManifestStore, local_id: str) -> None:
        self._store = store
        self._local_id = local_id
        self._pending: tuple[int, str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._submitted = 0  # versions numbered in the order they were submitted
        self._saved = 0  # the newest version on disk (it holds everything older ones did)
        self._failed: BaseException | None = None  # why the newest save that ended failed (None: it succeeded)

    def submit(self, manifest_json: str) -> int:
        """Queue a version for saving; return its number (for :meth:`saved`)."""
        self._submitted += 1
        self._pending = (self._submitted, manifest_json)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())
        return self._submitted

    async def _drain(self) -> None:
        while self._pending is not None:
            (version, text), self._pending = self._pending, None
            try:
                await self._store.save(self._local_id, text)
            except Exception as exc:
                log.warning("saving the manifest of %s failed: %s", self._local_id, exc)
                self._error = self._failed = exc
            else:
                self._saved, self._failed = version, None

    async def saved(self, version: int) -> None:
        """Return once ``version`` or a newer one is on disk (at once, without a turn of the loop, if it is); raise
        why not when its save failed and nothing newer is being saved."""
        while self._saved < version:
            if self._task is None or self._task.done():
                raise self._failed or RuntimeError("the manifest was not saved")
            await asyncio.shield(self._task)

    async def flush(self) -> None:
        """Return once every submitted version is saved (or raise why one was not)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    async def discard(self) -> None:
        """Drop what is not written yet, wait for a save under way, then delete: nothing may bring it back."""
        self._pending = None
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._task)
        self._error = None
        await self._store.discard(self._local_id)


class UploadDriver:
    def __init__(
        self,
        upload: Upload,
        api: PresignApi,
        sender: PartSender,
        store: ManifestStore,
        clock: Callable[[], float],
        on_view: ViewListener | None = None,
        on_copy: CopyStarter | None = None,
        on_hand_off: HandOffAsker | None = None,
    ) -> None:
        """``on_copy`` starts copying the file chosen again into the browser (the adapter holds the file); it reports
        ``Staged`` when done. Without it (a terminal, where a local file is its own copy) ``SaveCopy`` is moot.
        ``on_hand_off`` asks a page to register a Background Fetch (``HandOffAnswered`` comes back); the engine
        never hands off where the set of uploads was not told a page can."""
        self.upload = upload
        self._api = api
        self._sender = sender
        self._clock = clock
        self._on_view = on_view
        self._on_copy = on_copy
        self._on_hand_off = on_hand_off
        self.observer: EventObserver | None = None
        self._queue: asyncio.Queue[list[Command]] = asyncio.Queue()
        self._parts: dict[int, asyncio.Task[None]] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._hashes: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._manifests = ManifestWriter(store, upload.manifest.local_id)
        self._parts_after = 0  # the manifest version that must be on disk before a PUT starts

    def post(self, event: Event) -> None:
        """Feed an event (from outside or from a finished task). The machine handles it at once, so its phase is
        current the moment this returns (the queue counts on it); the commands run in :meth:`run`'s loop."""
        try:
            commands = self.upload.handle(event)
        except IllegalEvent:
            # A bug outside the machine; the upload keeps going from a state that is still consistent.
            log.exception("upload %s refused an event", self.upload.manifest.local_id)
            return
        if self.observer is not None:
            self.observer(event, commands)
        self._queue.put_nowait(commands)

    def now(self) -> float:
        return self._clock()

    def save_manifest(self) -> None:
        """Save the upload's manifest as it is now (a new upload's first version), in the background and in order
        with every later version: nothing waits for it (no PUT goes before the version with its checksum is saved,
        ``PersistManifest.before_parts``), so a pick's create is not held up behind a storage write."""
        self._manifests.submit(self.upload.manifest.to_json())

    def stop(self) -> None:
        """Put the upload away at once (its owner signed out; engine/owner.py): no part, call or timer of it goes on.
        Nothing is saved or decided: the manifest on disk is what a later resume starts from, as after a close."""
        for task in (*self._parts.values(), *self._calls, *self._hashes, self._timer):
            if task is not None:
                task.cancel()

    def _settled(self) -> bool:
        return self.upload.is_idle and not self._parts and not self._calls and not self._hashes and self._queue.empty()

    async def run(self) -> UploadView:
        """Run until the upload is idle (queued, completed, paused, failed or cancelled); return its last view."""
        while True:
            try:
                while not self._settled():
                    await self._execute(await self._queue.get())
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if self.upload.is_idle:
                    for task in self._parts.values():
                        task.cancel()
            await self._manifests.flush()  # idle: what was decided is on disk when run() returns
            if self._queue.empty():  # nothing was posted while the manifest was being saved
                return self.upload.view()

    async def _execute(self, commands: list[Command]) -> None:
        for command in commands:
            match command:
                case SendPart():
                    self._parts[command.number] = asyncio.ensure_future(self._send(command))
                case HashPart():
                    self._hash(command)
                case CancelParts(numbers=numbers):
                    for number in numbers:
                        task = self._parts.pop(number, None)
                        if task is not None:
                            task.cancel()
                case PersistManifest(manifest_json=text, wait=wait, before_parts=before_parts):
                    version = self._manifests.submit(text)
                    if wait:
                        await self._manifests.flush()
                    elif before_parts:
                        self._parts_after = version
                case DiscardLocal():
                    await self._manifests.discard()
                case CreateSession():
                    self._spawn(ApiCall.CREATE, self._api.create_session(command))
                case FetchState():
                    self._spawn(ApiCall.STATE, self._api.fetch_state(command))
                case RequestUrls():
                    self._spawn(ApiCall.URLS, self._api.request_urls(command))
                case CompleteUpload():
                    self._spawn(ApiCall.COMPLETE, self._api.complete(command))
                case AbortUpload(session_id=session_id, upload_token=token):
                    await self._abort(session_id, token)
                case SaveCopy():
                    if self._on_copy is not None:
                        self._on_copy()
                case HandOff():
                    if self._on_hand_off is not None:
                        self._on_hand_off(command)
                case Wakeup(at=at):
                    self._set_timer(at)
                case Publish(view=view):
                    if self._on_view is not None:
                        self._on_view(view)

    async def _send(self, command: SendPart) -> None:
        try:
            try:
                await self._manifests.saved(self._parts_after)
            except Exception as exc:  # no byte goes out that a resume could not check
                raise SendFailed(Failure(FailureKind.FATAL, f"{MANIFEST_NOT_SAVED}: {exc}")) from exc
            etag = await self._sender.send(command)
        except SendFailed as exc:
            event: Event = PartFailed(self._clock(), command.number, exc.failure)
        except Exception as exc:  # an adapter bug must not leave the part "in flight" forever
            log.exception("sending part %d failed unexpectedly", command.number)
            event = PartFailed(self._clock(), command.number, network_failure(repr(exc)))
        else:
            event = PartSent(self._clock(), command.number, etag)
        finally:
            self._parts.pop(command.number, None)
        self.post(event)

    def _hash(self, command: HashPart) -> None:
        async def digest() -> None:
            try:
                event: Event = PartHashed(self._clock(), command.number, await self._sender.sha256(command))
            except SendFailed as exc:
                event = PartFailed(self._clock(), command.number, exc.failure)
            except Exception as exc:
                log.exception("hashing part %d failed unexpectedly", command.number)
                event = PartFailed(self._clock(), command.number, network_failure(repr(exc)))
            finally:
                self._hashes.discard(task)
            self.post(event)

        task = asyncio.ensure_future(digest())
        self._hashes.add(task)

    def _spawn(self, call: ApiCall, outcome: Any) -> None:
        async def wrapped() -> None:
            try:
                event: Event = await outcome
            except CallFailed as exc:
                event = RequestFailed(self._clock(), call, exc.failure)
            except Exception as exc:  # same reasoning as for parts: report, never hang
                log.exception("%s call failed unexpectedly", call.value)
                event = RequestFailed(self._clock(), call, network_failure(repr(exc)))
            finally:
                # Deregister before the event is seen: run() must not wait for a call that has already answered.
                self._calls.discard(task)
            self.post(event)

        task = asyncio.ensure_future(wrapped())
        self._calls.add(task)

    async def _abort(self, session_id: str, token: str) -> None:
        try:
            await self._api.abort(session_id, token)
        except CallFailed as exc:
            # A multipart upload left behind is reclaimed by the server's janitor; the user's cancel still stands.
            log.warning("abort of session %s failed: %s", session_id, exc.failure.message)

    def _set_timer(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()

        async def ring() -> None:
            # The loop's timers and this clock differ (resolution, rounding to milliseconds): sleep again until
            # the clock itself says the time has come, so the tick always carries a time at or past ``at``.
            while (remaining := at - self._clock()) > 0:  # noqa: ASYNC110 - waiting for a time, not an event
                await asyncio.sleep(max(remaining, 0.001))
            self.post(Tick(self._clock()))

        self._timer = asyncio.ensure_future(ring())
