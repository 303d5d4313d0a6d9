"""Retry delays: capped exponential backoff with full jitter.

Full jitter (a uniform delay between 0 and the exponential ceiling) spreads the retries of many clients that failed
together, so a recovering store is not hit by a synchronized wave. The random source is injected: the core reads no
global state, and tests pass a seeded ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``delay(attempt)`` lies in ``[0, min(cap, base * 2 ** (attempt - 1))]``; ``attempt`` counts from 1."""

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int = 8

    def ceiling(self, attempt: int) -> float:
        if attempt < 1:
            raise ValueError(f"attempts count from 1 (got {attempt})")
        # Bound the exponent so huge attempt counts cannot overflow a float.
        return min(self.cap, self.base * 2.0 ** min(attempt - 1, 60))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))

    def exhausted(self, attempt: int) -> bool:
        """True once ``attempt`` failures have used up the budget: the user must decide what happens next."""
        return attempt >= self.max_attempts
