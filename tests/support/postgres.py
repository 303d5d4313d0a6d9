"""A real PostgreSQL for tests: a private cluster in a temp dir, reachable only through a unix socket in that dir.

The server binaries are Debian's (``make postgresql`` installs the ``postgresql`` package); no system-wide cluster
is used or touched. ``initdb`` refuses to run as root, so under root the cluster is created and run as the
``postgres`` system user the Debian package adds (its directory is that user's, mode 0700, so only it and root can
reach the socket; the socket trusts whoever reaches it). Each test server gets a database of its own, cloned
(``CREATE DATABASE … TEMPLATE``) from one the migrations ran on once, so the migrations run once per cluster rather
than once per server start; tests about migrating get an empty database. The fixtures drop a database when its
servers have stopped. The cluster lives in memory (``/dev/shm``) where there is one: every database is a copy of
several MB of files, and on this machine's disk creating and deleting them cost more than the tests themselves.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from server.migrate import migrate

SUPERUSER = "postgres"
#: The database the migrations ran on, cloned for every server (it is never connected to otherwise: PostgreSQL
#: clones only a database nobody is connected to).
MIGRATED_TEMPLATE = "migrated_template"
#: Who runs the cluster when the tests run as root (initdb and postgres refuse root).
SERVICE_USER = "postgres"
INSTALL_HINT = "PostgreSQL is not installed: run `make postgresql` (Debian's postgresql package)"

#: Durability is not what these tests are about: skipping fsync keeps a 2-core machine fast. Connections: every
#: live server keeps a pool (5 + 10 overflow) and several run at once in some tests.
SERVER_OPTIONS = {
    "listen_addresses": "",
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "unix_socket_permissions": "0700",
    # Every CREATE DATABASE writes its copy to the WAL too: recycle it early, so the cluster stays small in memory.
    "max_wal_size": "64MB",
    "min_wal_size": "32MB",
}

#: A memory file system for the cluster, used when present (Linux).
MEMORY_DIR = Path("/dev/shm")


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory (Debian: ``/usr/lib/postgresql/<major>/bin``)."""
    candidates = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not candidates:
        raise RuntimeError(INSTALL_HINT)
    return max(candidates, key=lambda path: int(re.sub(r"\D", "", path.parent.name) or 0))


class PostgresCluster:
    """``initdb`` + ``pg_ctl start`` in a fresh temp dir; :meth:`database_url` hands out one database per key."""

    def __init__(self) -> None:
        self.bin_dir = postgres_bin_dir()
        self._as_user: Sequence[str] = ()
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SERVICE_USER)
            except KeyError:
                raise RuntimeError(f"{INSTALL_HINT} (it creates the {SERVICE_USER!r} user)") from None
            self._as_user = ("runuser", "-u", SERVICE_USER, "--")
        # Not under pytest's temp dirs: those are root's 0700 dirs the service user cannot enter.
        in_memory = MEMORY_DIR.is_dir() and os.access(MEMORY_DIR, os.W_OK | os.X_OK)
        self.root = Path(tempfile.mkdtemp(prefix="smartcat-pg-", dir=MEMORY_DIR if in_memory else None))
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.root.chmod(0o700)
        self.data_dir = self.root / "data"
        self.socket_dir = self.root
        self.log_file = self.root / "postgres.log"
        self._databases: dict[str, str] = {}  # key -> database name
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._template_ready = False

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.bin_dir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.root)
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{log}")

    def start(self) -> PostgresCluster:
        if not self.data_dir.exists():
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
        options = " ".join(f"-c {name}={value or repr('')}" for name, value in SERVER_OPTIONS.items())
        options += f" -c unix_socket_directories={self.socket_dir}"
        # -w: pg_ctl returns once the server accepts connections (or fails, with the log).
        data, log = str(self.data_dir), str(self.log_file)
        self._run("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")
        return self

    def stop(self) -> None:
        """Stop the server (fast: open connections are cut) and delete its files."""
        with contextlib.suppress(RuntimeError):
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit psycopg connection, e.g. for ``CREATE DATABASE``."""
        return psycopg.connect(host=str(self.socket_dir), user=SUPERUSER, dbname=database, autocommit=True)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this cluster (psycopg 3 over the unix socket)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def database_url(self, key: str, *, migrated: bool = False) -> str:
        """The URL of the database for ``key`` (e.g. a server's data dir), created on first use, so a server
        restarted on the same data dir finds its rows, as it would with SQLite in that dir. ``migrated``: created
        with the newest schema (a clone of the template), else empty."""
        with self._lock:
            if key not in self._databases:
                name = f"t{next(self._numbers)}"
                statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if migrated:
                    self._migrate_template()
                    statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(MIGRATED_TEMPLATE))
                with self.connect() as connection:
                    connection.execute(statement)
                self._databases[key] = name
            return self.url(self._databases[key])

    def drop_database(self, key: str) -> None:
        """Drop the database for ``key``, if there is one (connections still open to it are cut)."""
        with self._lock:
            name = self._databases.pop(key, None)
            if name is None:
                return
            with self.connect() as connection:
                connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def _migrate_template(self) -> None:
        """Create the template and run the migrations on it, once (under the lock)."""
        if self._template_ready:
            return
        with self.connect() as connection:  # a template left by a failed attempt is made again
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(MIGRATED_TEMPLATE)))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(MIGRATED_TEMPLATE)))
        # NullPool: no connection outlives the migration, or cloning would fail with "being accessed by other users".
        engine = create_engine(self.url(MIGRATED_TEMPLATE), poolclass=NullPool)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        self._template_ready = True

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()
