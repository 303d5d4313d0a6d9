"""A background loop for work that falls due: one asyncio task per process, woken early by :meth:`DueLoop.poke`.

The outbox dispatcher and the notifier both run rounds of "do what is due, then sleep until the next item is due,
the poll interval passes, or someone pokes" (a commit that wrote an event, a new ledger item). The loop survives a
failing round (logged, retried at the next wake-up); subclasses say what a round is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from server.clock import utcnow

log = logging.getLogger(__name__)


class DueLoop:
    def __init__(self, name: str, poll_seconds: float) -> None:
        self._name = name
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def run_round(self) -> datetime | None:
        """Do the work due now; return when the next pending item falls due (None: nothing pending)."""
        raise NotImplementedError

    @property
    def started(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def poke(self) -> None:
        """Wake the loop now (callable from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            next_due: datetime | None = None
            try:
                next_due = await self.run_round()
            except Exception:
                log.exception("%s round failed", self._name)
            timeout = self._poll_seconds
            if next_due is not None:
                timeout = min(timeout, max(0.0, (next_due - utcnow()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
