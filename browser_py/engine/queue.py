"""Which uploads run now: a few at a time, oldest first, so one big batch does not split the bandwidth N ways and
every file finishes later than it needs to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .upload import Phase

#: Phases that use bandwidth (or will in a moment): they hold a place in the queue.
RUNNING = frozenset({Phase.SAVING, Phase.CREATING, Phase.RESUMING, Phase.UPLOADING, Phase.COMPLETING, Phase.OFFLINE})


@dataclass(frozen=True, slots=True)
class Entry:
    local_id: str
    phase: Phase
    created_at: float


def to_start(entries: Iterable[Entry], limit: int) -> list[str]:
    """The queued uploads (phase NEW) to start now so that at most ``limit`` run, oldest first."""
    entries = list(entries)
    running = sum(1 for e in entries if e.phase in RUNNING)
    waiting = sorted((e for e in entries if e.phase is Phase.NEW), key=lambda e: e.created_at)
    return [e.local_id for e in waiting[: max(0, limit - running)]]
