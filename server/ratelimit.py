"""Rate limits per identity and per client address, counted by the ``limits`` package.

The counters live in ``RATE_LIMIT_STORAGE_URI``: this process's memory by default, or a shared store (Redis,
Memcached, MongoDB ...) so several server processes agree. A moving window: a burst at a window's edge cannot double
the rate. A refusal is :class:`RateLimited` (429 with ``Retry-After``).

The client address is what uvicorn reports: behind a reverse proxy, run uvicorn with ``FORWARDED_ALLOW_IPS`` set to
the proxy's address so ``X-Forwarded-For`` is believed from it, and from nobody else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from server.settings import Settings


class RateLimited(Exception):
    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many {what}; retry in {retry_after} s")
        self.retry_after = retry_after


class RateLimits:
    """The limits of one deployment and the limiter counting them."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage_uri))
        self.create = parse_many(settings.rate_limit_create)
        self.urls = parse_many(settings.rate_limit_urls)
        self.new_identity = parse_many(settings.rate_limit_new_identity)
        self.confirmation_email = parse_many(settings.rate_limit_confirmation_email)
        self.telemetry = parse_many(settings.rate_limit_telemetry)

    def hit(self, what: str, limits: Sequence[RateLimitItem], *keys: str) -> None:
        """Count one ``what`` against every limit for every key (e.g. the user and the address); raise
        :class:`RateLimited` when one is exhausted, saying when to retry."""
        for key in keys:
            for limit in limits:
                if not self._limiter.hit(limit, what, key):
                    reset = self._limiter.get_window_stats(limit, what, key).reset_time
                    raise RateLimited(what, max(1, math.ceil(reset - time.time())))


async def get_rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def answer(_request: Request, error: Exception) -> JSONResponse:
    """The app's handler for :class:`RateLimited`."""
    assert isinstance(error, RateLimited)
    return JSONResponse({"detail": str(error)}, status_code=429, headers={"Retry-After": str(error.retry_after)})
