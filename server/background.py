"""A background loop for work that falls due: one asyncio task per process, woken early by :meth:`DueLoop.poke`.

The outbox dispatcher, the notifier and the scanner all run rounds of "do what is due, then sleep until the next
item is due, the poll interval passes, or someone pokes" (a commit that wrote an event, a new ledger item, a new
scan). The loop survives a failing round (logged, retried at the next wake-up); subclasses say what a round is.
:class:`LeasedLoop` adds what the three share about leased rows: one claimant per process, an optional wake-up by a
commit that flagged new work, and handing back what the process still holds when it stops.

Stopping drains: the loop takes no new work (rounds look at :attr:`DueLoop.stopping`), what it is doing gets a
bounded time to finish and record its outcome (a webhook delivered and then cancelled before its receipt was written
would be delivered again by the next process), and only then is anything still running cancelled and its claim
handed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from server.clock import utcnow
from server.db import Database
from server.lease import Claimant

log = logging.getLogger(__name__)


class DueLoop:
    def __init__(self, name: str, poll_seconds: float) -> None:
        self._name = name
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def run_round(self) -> datetime | None:
        """Do the work due now; return when the next pending item falls due (None: nothing pending)."""
        raise NotImplementedError

    @property
    def started(self) -> bool:
        return self._loop is not None

    @property
    def stopping(self) -> bool:
        """Asked to stop: a round claims nothing more and finishes what it holds."""
        return self._stopping

    def start(self) -> None:
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """End the loop: a round in progress gets up to ``drain_seconds`` to finish the work it took, then whatever
        still runs is cancelled."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()  # a loop asleep between rounds ends now
        if drain_seconds > 0 and not task.done():
            log.info("%s stopping: finishing the work in hand (up to %.0f s)", self._name, drain_seconds)
            await asyncio.wait({task}, timeout=drain_seconds)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def poke(self) -> None:
        """Wake the loop now (callable from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while not self._stopping:
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


class LeasedLoop(DueLoop):
    """A :class:`DueLoop` whose rounds lease rows (``server/lease.py``) on behalf of one :class:`Claimant`."""

    def __init__(self, name: str, poll_seconds: float, database: Database, wake_flag: str | None = None) -> None:
        super().__init__(name, poll_seconds)
        self.database = database
        self._claimant = Claimant()
        self._wake_flag = wake_flag  # a key of ``Session.info`` that a commit sets when it wrote new work

    @property
    def instance(self) -> str:
        """The prefix of every lease token this loop hands out (logged, so a held row names its process)."""
        return self._claimant.instance

    def release_held(self, db: Session) -> None:
        """Hand back the rows this process claimed and did not finish (not committed here)."""
        raise NotImplementedError

    def start(self) -> None:
        if self._wake_flag is not None:
            event.listen(self.database.sessions, "after_commit", self._after_commit)
        super().start()

    async def stop(self, drain_seconds: float = 0.0) -> None:
        if not self.started:
            return
        if self._wake_flag is not None:
            event.remove(self.database.sessions, "after_commit", self._after_commit)
        await super().stop(drain_seconds)
        # What this process claimed but did not finish is due again at once, not after the lease runs out.
        await asyncio.to_thread(self._release_claims)

    def _after_commit(self, session: Session) -> None:
        if self._wake_flag is not None and session.info.pop(self._wake_flag, False):
            self.poke()

    def _release_claims(self) -> None:
        with self.database.sessions() as db:
            self.release_held(db)
            db.commit()
