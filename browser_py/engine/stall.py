"""How long a part PUT may take before it counts as stalled.

The bound comes from how long finished parts took (seconds per byte, smoothed), not from the current transfer rate:
that rate falls while parts hang, and a bound derived from it would keep moving away from a stalled PUT (a store
that restarts mid-upload left PUTs waiting for minutes that way). Each stall widens the bound, so a link that really
got slower is not aborted over and over; each finished part pulls it back to what is measured. Time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class StallWatch:
    factor: float = 4.0  # a part may take this many times what finished parts took per byte
    minimum: float = 30.0  # never sooner than this (seconds)
    initial: float = 120.0  # before any part finished
    smoothing: float = 0.3  # weight of the newest part in the per-byte time
    _seconds_per_byte: float | None = None

    @property
    def seconds_per_byte(self) -> float | None:
        return self._seconds_per_byte

    def part_finished(self, length: int, seconds: float) -> None:
        """A PUT of ``length`` bytes answered after ``seconds`` (with the other parts in flight sharing the link)."""
        if length <= 0 or seconds <= 0:
            return
        observed = seconds / length
        known = self._seconds_per_byte
        self._seconds_per_byte = observed if known is None else known + self.smoothing * (observed - known)

    def part_stalled(self) -> None:
        """A PUT was given up on: allow the next ones twice as long, in case the link itself slowed down."""
        if self._seconds_per_byte is not None:
            self._seconds_per_byte *= 2

    def bound(self, length: int) -> float:
        """Seconds a PUT of ``length`` bytes may take before it is aborted and retried."""
        if self._seconds_per_byte is None:
            return self.initial
        return max(self.minimum, self.factor * self._seconds_per_byte * length)
