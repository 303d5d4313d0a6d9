"""``WORKERS``: several worker processes in one ``python -m server`` on PostgreSQL, and what they share.

The schema is migrated once, and concurrent starts are safe (the migration lock); an upload is served end to end by
a two-worker instance; ``/metrics`` from any worker counts the requests every worker answered; SIGTERM stops every
worker and leaves no process behind; a bad ``WORKERS`` stops the start with a message naming it. These tests use
PostgreSQL whatever ``--db`` says (several processes on one database is what PostgreSQL is for here), so the
PostgreSQL pass of ``make test`` leaves this file out.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from server.db import Database
from server.migrate import ADVISORY_LOCK_KEY, alembic_config
from server.settings import REPO_ROOT
from tests.server.test_migrations import schema_drift
from tests.support.postgres import PostgresCluster

_MIGRATE = "import sys; from server.db import Database; Database(sys.argv[1]).migrate()"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_server_starting_while_another_migrates_waits_and_finds_the_schema_current(
    postgres: PostgresCluster,
) -> None:
    """Another instance is half-way through migrating an empty database (its transaction holds the new tables,
    uncommitted) when a server starts: the server waits for it, then finds the schema current. Without the lock it
    created the same tables, blocked on the other's, and failed once that committed (duplicate key)."""
    url = postgres.database_url("concurrent-migrations")
    other = Database(url)
    try:
        with other.engine.begin() as connection:  # the other instance, mid-migration
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            starting = subprocess.Popen(
                [sys.executable, "-c", _MIGRATE, url], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True
            )

            def waiting() -> bool:
                assert starting.poll() is None, starting.communicate()
                with other.engine.connect() as watcher:
                    return bool(
                        watcher.execute(
                            text(
                                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND wait_event_type = 'Lock'"
                            )
                        ).scalar_one()
                    )

            wait_for(waiting, "the starting server never waited for the migrating one")
        _, errors = starting.communicate(timeout=60)
        assert starting.returncode == 0, errors
        with other.engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [ScriptDirectory.from_config(alembic_config()).get_current_head()]
        assert schema_drift(other) == []
    finally:
        other.dispose()
        postgres.drop_database("concurrent-migrations")
