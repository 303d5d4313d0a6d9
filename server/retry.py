"""How the background loops (outbox dispatcher, notifier) poll, hold their leases, and retry what failed.

One policy, read once from the ``OUTBOX_*`` settings, so the two loops cannot drift apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.settings import Settings


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with "equal jitter": half the step fixed, half random.

    The fixed half keeps a retry from firing at once after a failure (full jitter can pick ~0); the random half
    spreads retries of many events failing together (a consumer that was down) over time.
    """
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)


#: The longest a stopping process waits for its deliveries in flight (``WorkPolicy.drain_seconds``).
DRAIN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class WorkPolicy:
    poll_seconds: float = 2.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    max_attempts: int = 20
    #: A claim not finished within this long (its process died) is taken up again.
    lease_seconds: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkPolicy:
        return cls(
            poll_seconds=settings.outbox_poll_seconds,
            retry_base_seconds=settings.outbox_retry_base_seconds,
            retry_max_seconds=settings.outbox_retry_max_seconds,
            max_attempts=settings.outbox_max_attempts,
            lease_seconds=settings.outbox_lease_seconds,
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    @property
    def drain_seconds(self) -> float:
        """How long a stopping process lets deliveries in flight finish (and write their receipts): well inside the
        lease, so no other process takes a row over meanwhile, and short enough for a service manager's stop."""
        return min(DRAIN_SECONDS, self.lease_seconds / 2)

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=retry_delay(attempts, self.retry_base_seconds, self.retry_max_seconds))
