"""Alembic environment: the app's models are the target; the connection comes from :func:`server.migrate.migrate`
(or, for the ``alembic`` command line, from ``DATABASE_URL``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from server.db import Database
from server.migrate import target_metadata
from server.settings import Settings


def run(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    context.configure(connection=connection, target_metadata=target_metadata(), render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_from_settings() -> None:
    database = Database(Settings().resolved_database_url)
    try:
        with database.engine.begin() as connection:
            run(connection)
    finally:
        database.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    run_from_settings()
