"""Shared fixtures: one real SeaweedFS per test session, real servers against it.

Fixtures (see ``tests/support`` for the machinery; ``e2e/conftest.py`` may import from there directly):

``seaweed`` (session)
    :class:`tests.support.seaweed.SeaweedService`: ``.endpoint_url``, ``.access_key_id``, ``.secret_access_key``,
    ``.region``, ``.client`` (boto3 S3 client), ``.restart()`` / ``.stop()`` / ``.start()``.
``s3`` (session)
    ``seaweed.client``, the boto3 client.
``server_settings`` (module)
    :class:`server.settings.Settings` for this module's server: its own bucket, data dir and free port.
``live_server`` (module)
    :class:`tests.support.live_server.LiveServer` running with ``server_settings``: ``.base_url``, ``.settings``,
    ``.client()`` (a new httpx client = a new anonymous user), ``.restart()``.
``base_url`` (function)
    ``live_server.base_url``.
``client`` (function)
    An ``httpx.Client`` on ``live_server`` with a fresh cookie jar.
``make_live_server`` (function)
    ``make_live_server(**overrides) -> LiveServer`` (type: :class:`tests.support.live_server.MakeLiveServer`): a
    started server on its own bucket, port and data dir, with settings overridden by field name (e.g.
    ``s3_public_endpoint_url="http://127.0.0.1:PROXY", presign_ttl_seconds=2``), stopped after the test.
``database_url`` (function)
    A fresh, empty database's SQLAlchemy URL on the database under test (dropped after the test on PostgreSQL).
``postgres`` (session)
    :class:`tests.support.postgres.PostgresCluster`, a private PostgreSQL (started on first use).

The database under test is SQLite unless pytest runs with ``--db=postgresql``: then every server the fixtures
start, and ``database_url``, use a database of their own on one private PostgreSQL cluster (``make test`` runs the
server and notification suites that way too).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from server.settings import Settings
from tests.support.clamd import ClamdService, start_clamd
from tests.support.live_server import LiveServer, MakeLiveServer, settings_for
from tests.support.postgres import PostgresCluster
from tests.support.seaweed import SeaweedService, start_seaweed

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the database test servers run on: SQLite files (default) or a private PostgreSQL cluster",
    )


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM ends the run like Ctrl-C, so fixtures tear down and no SeaweedFS is left running."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedService]:
    service = start_seaweed(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def s3(seaweed: SeaweedService) -> S3Client:
    return seaweed.client


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdService]:
    """A real ClamAV daemon with the EICAR test signature (``make clamav`` installs it)."""
    service = start_clamd(tmp_path_factory.mktemp("clamd"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


def on_postgres(request: pytest.FixtureRequest) -> bool:
    # e2e/ imports these fixtures without this conftest's option (it then runs on SQLite).
    return bool(request.config.getoption("--db", default="sqlite") == "postgresql")


def database_overrides(request: pytest.FixtureRequest, data_dir: Path) -> dict[str, Any]:
    """The settings that put a test server's database on the database under test: none for SQLite (the server's
    default file in its data dir), else the PostgreSQL database belonging to that data dir, created migrated."""
    if not on_postgres(request):
        return {}
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return {"database_url": cluster.database_url(str(data_dir.resolve()), migrated=True)}


def drop_databases(request: pytest.FixtureRequest, data_dirs: list[Path]) -> None:
    """Drop the PostgreSQL databases :func:`database_overrides` made for these data dirs, once their servers have
    stopped, so the cluster holds only the databases of running tests."""
    if on_postgres(request) and data_dirs:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        for data_dir in data_dirs:
            cluster.drop_database(str(data_dir.resolve()))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if not on_postgres(request):
        yield f"sqlite:///{tmp_path / 'app.sqlite3'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    yield cluster.database_url(str(tmp_path.resolve()))
    cluster.drop_database(str(tmp_path.resolve()))


@pytest.fixture(scope="module")
def server_settings(
    seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    data_dir = tmp_path_factory.mktemp(name)
    yield settings_for(seaweed, data_dir, **database_overrides(request, data_dir))
    drop_databases(request, [data_dir])


@pytest.fixture(scope="module")
def live_server(server_settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(server_settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def base_url(live_server: LiveServer) -> str:
    return live_server.base_url


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        yield http


@pytest.fixture
def make_live_server(
    seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[MakeLiveServer]:
    started: list[LiveServer] = []
    data_dirs: list[Path] = []

    def make(**overrides: Any) -> LiveServer:
        data_dir = overrides.pop("data_dir", None) or tmp_path_factory.mktemp("server")
        data_dirs.append(data_dir)
        overrides = {**database_overrides(request, data_dir), **overrides}
        server = LiveServer(settings_for(seaweed, data_dir, **overrides)).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()
        drop_databases(request, data_dirs)
