"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work: database, S3, the scanner when on).

For load balancers and orchestrators: an instance whose scanner is unreachable is not ready, because every upload
it completes would wait in quarantine. Answers name what failed but carry no addresses or credentials.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from server.db import Database
from server.scan.worker import ScanWorker
from server.storage import Storage, StorageError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database(database: Database) -> str | None:
    try:
        with database.sessions() as db:
            db.execute(text("SELECT 1"))
    except Exception as error:  # any failure means not ready; its class says which
        return f"unavailable ({type(error).__name__})"
    return None


def _storage(storage: Storage) -> str | None:
    try:
        storage.check()
    except StorageError as error:
        return f"unavailable ({type(error).__name__})"
    return None


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, Any] = {
        "database": await run_in_threadpool(_database, request.app.state.database),
        "storage": await run_in_threadpool(_storage, request.app.state.storage),
    }
    scanner: ScanWorker | None = request.app.state.scanner
    if scanner is not None:
        problem = await run_in_threadpool(scanner.ready)
        checks["scanner"] = "unavailable" if problem else None
    ready = all(value is None for value in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": {k: v or "ok" for k, v in checks.items()}}
    code = status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})
