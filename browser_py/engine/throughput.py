"""Throughput and ETA from confirmed bytes over a sliding time window.

Parts complete in bursts (several in flight finish close together), so the rate is "bytes confirmed in the last
``window`` seconds over the time covered", not a per-part speed. Time is passed in; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class ThroughputMeter:
    window: float = 10.0
    _started_at: float | None = None
    _samples: deque[tuple[float, int]] = field(default_factory=deque)
    _anchor: float | None = None  # when the completion before the oldest kept sample happened

    @property
    def started_at(self) -> float | None:
        return self._started_at

    def start(self, now: float) -> None:
        """Sending (re)starts now: time before this (pauses, closed tabs) does not count against the rate."""
        self._started_at = now
        self._anchor = now
        self._samples.clear()

    def stop(self) -> None:
        self._started_at = None
        self._samples.clear()

    def record(self, now: float, nbytes: int) -> None:
        if self._started_at is None:
            self._started_at = self._anchor = now
        self._samples.append((now, nbytes))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._samples and self._samples[0][0] <= now - self.window:
            self._anchor = self._samples.popleft()[0]

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

    def uncertainty(self, now: float) -> float | None:
        """Relative uncertainty of the rate, in (0, 0.9]: wide with few or erratic samples, narrowing as steady
        samples come in. Spread of the per-completion rates (their coefficient of variation) over sqrt(n), plus a
        1/(n+1) floor for having seen little."""
        self._trim(now)
        if self._started_at is None or not self._samples:
            return None
        rates: list[float] = []
        previous = self._anchor if self._anchor is not None else self._started_at
        for at, nbytes in self._samples:
            # Parts finishing together share the time since the previous completion.
            gap = max(at - previous, 1e-3)
            rates.append(nbytes / gap)
            previous = at
        n = len(rates)
        mean = sum(rates) / n
        spread = math.sqrt(sum((r - mean) ** 2 for r in rates) / n) / mean if mean > 0 else 1.0
        return min(0.9, spread / math.sqrt(n) + 1.0 / (n + 1))

    def eta_range(self, now: float, remaining: int) -> tuple[float, float, float] | None:
        """(soonest, likely, latest) seconds until ``remaining`` bytes are confirmed."""
        likely = self.eta(now, remaining)
        u = self.uncertainty(now)
        if likely is None or u is None:
            return None
        return likely / (1 + u), likely, likely / (1 - u)
