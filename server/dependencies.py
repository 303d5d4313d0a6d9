"""FastAPI dependencies for what the app builds once at start-up; tests swap them via ``dependency_overrides``.

They are ``async def`` although they do no awaiting: FastAPI runs a plain ``def`` dependency on a worker thread, and
a request with ten of them paid ten thread hand-offs (with this change the server's CPU per request fell by about
9 %, ``python -m load.cpu``). Only the handler itself, which blocks on the database and S3, runs on a thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.db import Database
from server.settings import Settings
from server.storage import Storage


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_db(database: Annotated[Database, Depends(get_database)]) -> AsyncIterator[Session]:
    """One SQLAlchemy session per request, closed after the response. Making one does no I/O (it connects on first
    use, in the handler's thread); closing one that still holds a connection does (a rollback), so that goes to a
    thread."""
    session = database.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
DbSession = Annotated[Session, Depends(get_db)]
