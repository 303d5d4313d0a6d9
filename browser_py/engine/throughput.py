"""Throughput and ETA from confirmed bytes over a sliding time window.

Parts complete in bursts (several in flight finish close together), so the rate is "bytes confirmed in the last
``window`` seconds over the time covered", not a per-part speed. Time is passed in; nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class ThroughputMeter:
    window: float = 10.0
    _started_at: float | None = None
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def start(self, now: float) -> None:
        """Sending (re)starts now: time before this (pauses, closed tabs) does not count against the rate."""
        self._started_at = now
        self._samples.clear()

    def stop(self) -> None:
        self._started_at = None
        self._samples.clear()

    def record(self, now: float, nbytes: int) -> None:
        if self._started_at is None:
            self._started_at = now
        self._samples.append((now, nbytes))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._samples and self._samples[0][0] <= now - self.window:
            self._samples.popleft()

    def rate(self, now: float) -> float | None:
        """Bytes per second over the window, or None before anything was confirmed."""
        if self._started_at is None:
            return None
        self._trim(now)
        if not self._samples:
            return None
        covered = now - max(self._started_at, now - self.window)
        if covered <= 0:
            return None
        return sum(n for _, n in self._samples) / covered

    def eta(self, now: float, remaining: int) -> float | None:
        """Seconds until ``remaining`` bytes are confirmed at the current rate."""
        if remaining <= 0:
            return 0.0
        rate = self.rate(now)
        if not rate:
            return None
        return remaining / rate
