"""``WORKERS``: several worker processes in one ``python -m server`` on PostgreSQL, and what they share.

The schema is migrated once, and concurrent starts are safe (the migration lock); an upload is served end to end by
a two-worker instance; ``/metrics`` from any worker counts the requests every worker answered; SIGTERM stops every
worker and leaves no process behind; a bad ``WORKERS`` stops the start with a message naming it. These tests use
PostgreSQL whatever ``--db`` says (several processes on one database is what PostgreSQL is for here), so the
PostgreSQL pass of ``make test`` leaves this file out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from browser_py.adapters.cpython import upload_file
from server.db import Database
from server.keyfiles import read_or_create
from server.migrate import ADVISORY_LOCK_KEY, alembic_config
from server.notify.keys import _new_private_pem
from server.settings import DEV_S3_ACCESS_KEY_ID, DEV_S3_SECRET_ACCESS_KEY, REPO_ROOT
from tests.server.test_migrations import schema_drift
from tests.support.notify import wait_until
from tests.support.ports import free_port, port_is_free
from tests.support.postgres import PostgresCluster
from tests.support.scrape import scrape, value
from tests.support.server_process import main_in_process, server_environment, start, stop
from tests.support.uploads import MiB, sha256

_MIGRATE = "import sys; from server.db import Database; Database(sys.argv[1]).migrate()"


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

            wait_until(waiting, 60, "the starting server to wait for the migrating one", interval=0.05)
        _, errors = starting.communicate(timeout=60)
        assert starting.returncode == 0, errors
        with other.engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [ScriptDirectory.from_config(alembic_config()).get_current_head()]
        assert schema_drift(other) == []
    finally:
        other.dispose()
        postgres.drop_database("concurrent-migrations")


#: Requests sent at once while looking for both workers.
_AT_ONCE = 16


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (workers, SeaweedFS, nginx and theirs)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found |= {int(child), *_descendants(int(child))}
    return found


def _alive(pid: int) -> bool:
    """Running (an exited child not yet reaped by a parent that ended is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_two_workers_serve_an_upload_count_every_request_and_stop_without_leftovers(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    """``make run`` (SeaweedFS, nginx in front) with WORKERS=2 on PostgreSQL: the terminal uploader's file lands with
    its exact SHA-256; requests reach both workers, and ``/metrics`` from either counts all of them; SIGTERM stops
    every process it started and removes the workers' metrics directory. A worker killed meanwhile is replaced."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    url = postgres.database_url(str(tmp_path), migrated=True)
    env, s3_port = server_environment(
        tmp_path, port, WORKERS="2", DATABASE_URL=url, PART_SIZE_BYTES=str(5 * MiB), LOG_JSON="false"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process, lines = start(tmp_path, env)
    try:
        assert f"Smartcat uploader running at {origin}\n" in lines, "".join(lines)
        started = _descendants(process.pid)
        workers = {pid for pid in started if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}
        assert len(workers) == 2, "".join(lines)
        metrics_dir = Path(
            next(
                item.split(b"=", 1)[1].decode()
                for item in Path(f"/proc/{min(workers)}/environ").read_bytes().split(b"\0")
                if item.startswith(b"PROMETHEUS_MULTIPROC_DIR=")
            )
        )
        assert metrics_dir.is_dir() and metrics_dir.stat().st_mode & 0o777 == 0o700

        source = tmp_path / "notes.txt"
        source.write_bytes(os.urandom(3 * MiB).hex().encode())  # 6 MiB of text: two parts
        result = asyncio.run(upload_file(source, origin, tmp_path / "state"))
        assert result.ok, result.view
        store = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
            aws_access_key_id=DEV_S3_ACCESS_KEY_ID, aws_secret_access_key=DEV_S3_SECRET_ACCESS_KEY,
        )  # fmt: skip
        (stored,) = store.list_objects_v2(Bucket="uploads")["Contents"]
        assert sha256(store.get_object(Bucket="uploads", Key=stored["Key"])["Body"].read()) == sha256(
            source.read_bytes()
        )

        # Concurrent requests until both workers have answered some: nginx keeps its connections to the app open, so
        # one at a time would all go down one connection to one worker; at once, it opens several, and the kernel
        # gives each to whichever worker accepts it first.
        made = 0
        per_worker: dict[str, float] = {}
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(_AT_ONCE) as pool:
            while len([n for n in per_worker.values() if n > 0]) < 2:
                assert time.monotonic() < deadline, f"one worker answered everything: {per_worker}"
                answers = list(pool.map(lambda _: httpx.get(f"{origin}/healthz", timeout=30), range(_AT_ONCE)))
                assert [answer.status_code for answer in answers] == [200] * _AT_ONCE
                made += _AT_ONCE
                with httpx.Client(base_url=origin, timeout=30) as client:
                    samples = scrape(client)
                per_worker = {
                    dict(labels)["pid"]: count
                    for (name, labels), count in samples.items()
                    if name == "smartcat_worker_http_requests"
                }
        assert set(per_worker) == {str(pid) for pid in workers}
        assert value(samples, "smartcat_http_requests_total", route="/healthz", method="GET", status="200") == made

        # A worker that dies is replaced, and its series leaves /metrics with it (what it counted stays counted).
        gone = min(workers)
        os.kill(gone, signal.SIGKILL)

        def live_workers() -> set[str]:
            with httpx.Client(base_url=origin, timeout=30) as client:
                return {
                    dict(labels)["pid"] for name, labels in scrape(client) if name == "smartcat_worker_http_requests"
                }

        seen: list[set[str]] = []

        def replaced() -> bool:
            seen.append(live_workers())
            return str(gone) not in seen[-1] and len(seen[-1]) == 2

        try:
            wait_until(replaced, 120, "the killed worker to be replaced", interval=0.05)
        except AssertionError:
            raise AssertionError(f"the dead worker was not replaced, or stayed in /metrics: {seen[-3:]}") from None
        started |= _descendants(process.pid)
        with httpx.Client(base_url=origin, timeout=30) as client:
            assert (
                value(scrape(client), "smartcat_http_requests_total", route="/healthz", method="GET", status="200")
                == made
            )
    finally:
        stop(process, signal.SIGTERM, timeout=60)
    output = "".join(lines) + (process.stdout.read() if process.stdout else "")
    assert process.returncode == 0, output
    wait_until(lambda: not any(_alive(pid) for pid in started), 60, "every worker to exit", interval=0.05)
    assert not metrics_dir.exists()
    postgres.drop_database(str(tmp_path))


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_a_bad_workers_value_stops_the_start_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    """In-process ``main()``: the refusal comes before anything starts (a child would spend its time importing)."""
    port = free_port()
    env, s3_port = server_environment(tmp_path, port, WORKERS=workers)
    assert main_in_process(tmp_path, env, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "error: invalid settings (environment or .env):\n  WORKERS: Input should be" in err
    assert port_is_free(s3_port) and port_is_free(port), "nothing started"


def test_a_server_starting_while_another_makes_a_key_gets_that_key(tmp_path: Path) -> None:
    """Two instances start at once on one ``DATA_DIR``: the second reads the key file while the first is still making
    its key. Both end with the same, complete key. (When the file was created before the key was made, the second
    read it empty and went on with an empty key.)"""
    path = tmp_path / "vapid_private_key.pem"
    second: list[bytes] = []

    def first_makes_its_key() -> bytes:
        second.append(read_or_create(path, _new_private_pem))  # the other instance arrives meanwhile
        return _new_private_pem()

    first = read_or_create(path, first_makes_its_key)
    assert second[0].startswith(b"-----BEGIN PRIVATE KEY-----")
    assert first == second[0] == path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    assert [item.name for item in tmp_path.iterdir()] == [path.name], "no temporary file left"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_database_that_cannot_be_reached_stops_the_start_with_an_error_status(tmp_path: Path, workers: str) -> None:
    """One worker: the app's start-up fails inside uvicorn, which says why and exits 3; several: the parent's
    migration fails before any worker starts, in one line that names the database without its password, exit 1.
    Either way the status says the instance did not run (a supervisor would otherwise take it for a clean stop)."""
    port, nobody = free_port(), free_port()
    env, _s3_port = server_environment(
        tmp_path, port, WORKERS=workers, EMBEDDED_S3="false", EMBEDDED_PROXY="false",
        DATABASE_URL=f"postgresql+psycopg://uploader:hunter2@127.0.0.1:{nobody}/uploads",
    )  # fmt: skip
    process, lines = start(tmp_path, env)
    output = "".join(lines) + (process.stdout.read() if process.stdout else "")
    assert process.wait(60) == (3 if workers == "1" else 1), output
    assert "Smartcat uploader running at" not in output
    assert "hunter2" not in output
    if workers == "2":
        assert f"error: cannot migrate the database postgresql+psycopg://uploader:***@127.0.0.1:{nobody}/" in output
        assert "Traceback" not in output
    assert port_is_free(port)


def test_a_rate_limit_storage_the_limits_package_does_not_know_stops_the_start_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env, s3_port = server_environment(tmp_path, free_port(), RATE_LIMIT_STORAGE_URI="bogus://x")
    assert main_in_process(tmp_path, env, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "RATE_LIMIT_STORAGE_URI must be a storage URI of the limits package" in err and "'bogus://x'" in err
    assert port_is_free(s3_port), "nothing started"
