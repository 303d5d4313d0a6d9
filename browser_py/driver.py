"""The async loop that drives one :class:`~browser_py.engine.upload.Upload`: feeds events, executes commands.

It is the same code in Pyodide (asyncio on the browser's event loop) and in CPython; only the role implementations
differ. Part PUTs and service calls run as tasks that post their outcome back as events; manifest writes are awaited
in order, so a saved manifest never runs ahead of what S3 confirmed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .api import PresignApi
from .engine.commands import (
    AbortUpload,
    CancelParts,
    Command,
    CompleteUpload,
    CreateSession,
    DiscardLocal,
    FetchState,
    HashPart,
    PersistManifest,
    Publish,
    RequestUrls,
    SendPart,
    Wakeup,
)
from .engine.events import ApiCall, Event, PartFailed, PartHashed, PartSent, RequestFailed, Start, Tick
from .engine.failures import network_failure
from .engine.upload import Phase, Upload
from .ports import CallFailed, ManifestStore, PartSender, SendFailed

log = logging.getLogger(__name__)

ViewListener = Callable[[dict[str, Any]], None]


class UploadDriver:
    def __init__(
        self,
        upload: Upload,
        api: PresignApi,
        sender: PartSender,
        store: ManifestStore,
        clock: Callable[[], float],
        on_view: ViewListener | None = None,
    ) -> None:
        self.upload = upload
        self._api = api
        self._sender = sender
        self._store = store
        self._clock = clock
        self._on_view = on_view
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._parts: dict[int, asyncio.Task[None]] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._hashes: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None

    def post(self, event: Event) -> None:
        """Feed an event from outside (pause, resume, cancel, staged)."""
        self._queue.put_nowait(event)

    async def deliver(self, event: Event) -> None:
        """Handle an event right now, before (or instead of) running: e.g. refuse an upload before it starts."""
        await self._execute(self.upload.handle(event))

    def now(self) -> float:
        return self._clock()

    async def run(self) -> dict[str, Any]:
        """Run until the upload is idle (completed, paused, failed or cancelled); return its last view."""
        if self.upload.phase is Phase.NEW:
            await self._execute(self.upload.handle(Start(self._clock())))
        try:
            while not (
                self.upload.is_idle and not self._parts and not self._calls and not self._hashes and self._queue.empty()
            ):
                event = await self._queue.get()
                await self._execute(self.upload.handle(event))
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.upload.is_idle:
                for task in self._parts.values():
                    task.cancel()
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
                case PersistManifest(local_id=local_id, manifest_json=text):
                    await self._store.save(local_id, text)
                case DiscardLocal(local_id=local_id):
                    await self._store.discard(local_id)
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
                case Wakeup(at=at):
                    self._set_timer(at)
                case Publish(view=view):
                    if self._on_view is not None:
                        self._on_view(view)

    async def _send(self, command: SendPart) -> None:
        try:
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
        self._queue.put_nowait(event)

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
            self._queue.put_nowait(event)

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
            self._queue.put_nowait(event)

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
            self._queue.put_nowait(Tick(self._clock()))

        self._timer = asyncio.ensure_future(ring())
