"""The database connection for one ``DATABASE_URL`` (SQLite by default); the tables are in :mod:`server.models`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from server.migrate import migrate

#: FastAPI runs sync handlers on anyio's worker threads, at most 40 at once (its default limit): each may hold one
#: connection, so the pool keeps that many. SQLAlchemy's default (5 + 10 overflow) made handlers queue for a
#: connection under load and fail after 30 s (``make load`` found it first). Background loops (outbox, notifier,
#: janitor, scanner) take the overflow. Several instances each open up to this many: size PostgreSQL's
#: ``max_connections`` (or a PgBouncer) for it.
POOL_SIZE = 40
POOL_OVERFLOW = 10


class Database:
    """The engine and session factory for one ``DATABASE_URL``."""

    def __init__(self, url: str) -> None:
        connect_args: dict[str, Any] = {}
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _private_sqlite_file(url)
            # Request handlers run in a thread pool; a connection may be used by another thread than its creator.
            connect_args = {"check_same_thread": False, "timeout": 30}
        in_memory = self.is_sqlite and make_url(url).database in (None, "", ":memory:")
        pool: dict[str, int] = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        self.engine: Engine = create_engine(url, connect_args=connect_args, **pool)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (server/migrations); a fresh database gets all of it."""
        migrate(self.engine)

    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL lets readers proceed while a writer commits; foreign keys are off by default in SQLite."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file readable by this user only (0600), or make an existing one so; SQLite gives its
    journal and WAL files the database file's mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    path.chmod(0o600)
