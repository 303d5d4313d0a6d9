"""Route handlers that block (the database, S3) as ``async`` routes with exactly one thread hand-off.

FastAPI runs a plain ``def`` route on a worker thread, and then validates its answer on another one (it does so
for every sync route); each hand-off wakes a thread and moves the GIL twice, about 5 % of the server's CPU under
``make load``. A route wrapped with :func:`blocking` is a coroutine to FastAPI: its body runs on one worker thread,
and the answer is checked on the event loop (a model instance of the declared type costs an ``isinstance`` there).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
R = TypeVar("R")


def blocking(handler: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``handler`` run on a worker thread; FastAPI reads its parameters through the wrapper (``__wrapped__``)."""

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await run_in_threadpool(handler, *args, **kwargs)

    return run
