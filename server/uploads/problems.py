"""Refusals of the upload rules, raised by the service and answered by the app as ``{"detail": ...}``.

They keep the service free of HTTP while each still names its status code, and the answer has the exact shape of
FastAPI's ``HTTPException`` (the API clients see is unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from fastapi import Request, status
from fastapi.responses import JSONResponse


class UploadProblem(Exception):
    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str | dict[str, Any]) -> None:
        super().__init__(detail if isinstance(detail, str) else detail.get("message", ""))
        self.detail = detail


class Conflict(UploadProblem):
    status_code = status.HTTP_409_CONFLICT


class Gone(UploadProblem):
    status_code = status.HTTP_410_GONE


class Unprocessable(UploadProblem):
    status_code = status.HTTP_422_UNPROCESSABLE_CONTENT


class TooLarge(UploadProblem):
    status_code = status.HTTP_413_CONTENT_TOO_LARGE


class OverQuota(UploadProblem):
    """A per-user cap (uploads or bytes in progress) is reached; finishing or cancelling uploads frees it."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS


class StorageMismatch(UploadProblem):
    """Storage did something other than asked (assembled other bytes)."""

    status_code = status.HTTP_502_BAD_GATEWAY


async def answer(_request: Request, problem: Exception) -> JSONResponse:
    """The app's handler for :class:`UploadProblem`."""
    assert isinstance(problem, UploadProblem)
    return JSONResponse({"detail": problem.detail}, status_code=problem.status_code)


def ranges(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``: readable even when thousands of parts are missing."""
    spans: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], n)
        else:
            spans.append((n, n))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
