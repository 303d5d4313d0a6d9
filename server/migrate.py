"""The database schema, versioned with Alembic: the server brings it to the newest revision when it starts.

A new column or table is a new revision in ``server/migrations/versions`` (``alembic revision --autogenerate``
writes a draft from the models), so a deployed database moves forward instead of being recreated.

Several processes may start at once (instances started together, or anything else migrating the same database):
each migrates under a lock, so one upgrades and the others then find the schema current. On PostgreSQL the lock is
a transaction-level advisory lock (released by the commit that ends the upgrade); on a SQLite file it is an
exclusive ``flock`` on a file beside it (SQLite runs DDL outside a transaction, so its own locks do not cover it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from server.models import Base

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The advisory lock key every server process takes around migrating a PostgreSQL database ("smartcat" in ASCII).
ADVISORY_LOCK_KEY = int.from_bytes(b"smartcat", "big") >> 1


def target_metadata() -> MetaData:
    """Every model's table (:mod:`server.models` registers them all on ``Base``)."""
    return Base.metadata


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest revision; a fresh database gets the whole schema."""
    config = alembic_config()
    with _file_lock(engine), engine.begin() as connection:
        _advisory_lock(connection)
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "upload_sessions" in tables and "alembic_version" not in tables:
            # Made by the versions before migrations (create_all of the first revision's models): adopt it.
            command.stamp(config, "0001")
        command.upgrade(config, "head")


def _advisory_lock(connection: Connection) -> None:
    """On PostgreSQL, wait for any other migrating process's transaction to end (it is released with ours)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file, hold an exclusive lock on ``<file>.migrate-lock`` (mode 0600) while migrating."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    fd = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
