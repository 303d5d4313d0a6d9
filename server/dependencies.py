"""FastAPI dependencies for what the app builds once at start-up; tests swap them via ``dependency_overrides``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from server.db import Database
from server.settings import Settings
from server.storage import Storage


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_db(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """One SQLAlchemy session per request, closed after the response."""
    yield from database.session()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
DbSession = Annotated[Session, Depends(get_db)]
