"""Sends the engine's telemetry (:mod:`browser_py.engine.telemetry`) in batches: when an upload ended, every few
minutes while something happens, and when the last page leaves. A batch that does not arrive is put back for the
next one; one the server refuses (a 4xx other than 429) is dropped, never retried in a loop."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from wire.telemetry import TELEMETRY_PATH

from .engine.commands import Command
from .engine.events import Event
from .engine.telemetry import Telemetry
from .engine.upload import Upload
from .ports import JsonHttp, TransportError

log = logging.getLogger(__name__)


class Reporter:
    def __init__(self, telemetry: Telemetry, http: JsonHttp, clock: Callable[[], float]) -> None:
        self.telemetry = telemetry
        self._http = http
        self._clock = clock
        self._sending: asyncio.Future[None] | None = None
        #: Requests made and JSON bytes sent (the overhead the README reports).
        self.batches_sent = 0
        self.bytes_sent = 0

    def observer(self, upload: Upload) -> Callable[[Event, list[Command]], None]:
        """What the upload's driver calls with every event it fed the machine and the commands that came back."""
        local_id = upload.manifest.local_id

        def observe(event: Event, commands: list[Command]) -> None:
            session_id = upload.manifest.session_id or ""
            self.telemetry.observe(local_id, session_id, event, commands, upload.phase.value)
            if self.telemetry.due(self._clock()):
                self.flush_soon()

        return observe

    def flush_soon(self) -> None:
        """Send what is due in the background (at most one batch in flight)."""
        if self._sending is None or self._sending.done():
            self._sending = asyncio.ensure_future(self.flush())

    async def drain(self) -> None:
        """Wait for a batch in flight, then send what is left (the terminal uploader, before it exits)."""
        if self._sending is not None and not self._sending.done():
            await asyncio.wait([self._sending])
        await self.flush()

    async def flush(self) -> None:
        batch = self.telemetry.take(self._clock())
        if batch is None:
            return
        body = batch.to_json()
        try:
            status, _ = await self._http.request("POST", TELEMETRY_PATH, body)
        except TransportError as error:
            log.info("telemetry kept for later: %s", error)
            self.telemetry.put_back(batch)
            return
        if status == 429 or status >= 500:
            self.telemetry.put_back(batch)
        elif status >= 400:
            log.warning("telemetry batch refused (HTTP %d); dropped", status)
        else:
            self.batches_sent += 1
            self.bytes_sent += len(json.dumps(body, separators=(",", ":")))
