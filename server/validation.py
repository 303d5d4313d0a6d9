"""422 answers that say what is wrong without echoing what was sent: FastAPI's default repeats each refused input
(a 10 MB field comes back as a 10 MB answer, and a secret in a wrong field lands in logs and caches)."""

from __future__ import annotations

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

#: At most this many problems are listed, each message at most this long.
MAX_ERRORS = 20
MAX_MESSAGE = 200


async def answer(_request: Request, error: Exception) -> JSONResponse:
    """The app's handler for :class:`RequestValidationError`: location, message and type of each problem."""
    assert isinstance(error, RequestValidationError)
    problems = [
        {
            "loc": [str(part)[:64] for part in problem.get("loc", ())][:8],
            "msg": str(problem.get("msg", ""))[:MAX_MESSAGE],
            "type": str(problem.get("type", ""))[:64],
        }
        for problem in error.errors()[:MAX_ERRORS]
    ]
    return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
