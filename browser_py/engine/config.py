"""The engine's tunables, chosen by the server (``/api/runtime``) or the command line, validated once here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .backoff import Backoff


@dataclass(frozen=True, slots=True)
class EngineConfig:
    concurrency: int = 4
    url_batch: int = 16  # URLs asked for at once; more means fewer round trips, older URLs at the end
    url_refresh_margin: float = 60.0  # a URL expiring sooner than this is not used for a new PUT
    leave_threshold: float = 45.0  # above this ETA the user is told they need not wait
    hash_concurrency: int = 4  # parts hashed at once, up to one per PUT slot, so no slot waits for a checksum
    # While the browser's copy is being made (a crash then means choosing the file again), PUTs and hashing read the
    # same disk and share the worker with the copy: at most this many parts in flight, and one hashed at a time, so
    # the copy is not starved (measured: bench/saved.py).
    saving_concurrency: int = 2
    parallel_uploads: int = 2  # files uploading at once; more wait as "Queued" (their copy is saved meanwhile)
    # The part size asked of the server (None: its default). Knowing it, the first part is hashed while the session
    # is being created, both sides cutting it with the same plan_parts().
    part_size: int | None = None
    # Adapt parts in flight to measured goodput and failures (engine/tuning.py), starting at `concurrency`.
    adaptive_concurrency: bool = False
    # Size a new upload's parts from what earlier uploads measured of the link (engine/link.py).
    adaptive_part_size: bool = False
    # The deployment's part URLs are on the app's origin (PART_URL_BASE), so the rest of a long upload can be handed
    # to the browser's Background Fetch where a page has it (engine/handoff.py).
    background_fetch: bool = False
    # A PUT is stalled (aborted and retried) when it takes stall_factor times what finished parts took per byte,
    # and never sooner than stall_min; before any part finished, stall_initial applies (engine/stall.py).
    stall_factor: float = 4.0
    stall_min: float = 30.0
    stall_initial: float = 120.0
    # Part answers in a row that were not the storage's (a captive portal's page, no ETag) before the user is told.
    not_storage_limit: int = 4
    backoff: Backoff = field(default_factory=Backoff)
    # How often the verdict of the server's malware scan is asked for while the object waits in quarantine.
    scan_poll: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=20.0))
    # While only its numbers move, a card is published to the pages at most this often (engine/publication.py);
    # a new phase, button, banner or error goes out at once.
    view_interval: float = 0.1

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.url_batch < 1:
            raise ValueError("url_batch must be at least 1")
        if self.saving_concurrency < 1:
            raise ValueError("saving_concurrency must be at least 1")
        if self.parallel_uploads < 1:
            raise ValueError("parallel_uploads must be at least 1")
        if self.view_interval < 0:
            raise ValueError("view_interval must not be negative")

    @classmethod
    def from_settings(cls, chosen: Mapping[str, Any]) -> EngineConfig:
        """The settings the server sends (``/api/runtime``'s ``engine``); what it leaves out keeps its default."""
        defaults = cls()
        return cls(
            leave_threshold=float(chosen.get("leave_threshold", defaults.leave_threshold)),
            parallel_uploads=int(chosen.get("parallel_uploads", defaults.parallel_uploads)),
            part_size=int(chosen["part_size"]) if chosen.get("part_size") else defaults.part_size,
            adaptive_concurrency=bool(chosen.get("adaptive_concurrency", defaults.adaptive_concurrency)),
            adaptive_part_size=bool(chosen.get("adaptive_part_size", defaults.adaptive_part_size)),
            background_fetch=bool(chosen.get("background_fetch", defaults.background_fetch)),
        )
