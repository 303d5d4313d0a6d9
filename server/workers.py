"""Several worker processes in one instance (``WORKERS`` > 1): one Python process uses one core, so ``python -m
server`` runs uvicorn's supervisor, which starts the workers on one listening socket and replaces one that dies.

What must happen once happens in the parent before any worker starts: the schema is migrated (the workers then skip
it) and the keys kept in ``DATA_DIR`` are made (a worker reading a key file another has created but not yet written
would use an empty key). The workers get a private, empty ``PROMETHEUS_MULTIPROC_DIR`` that the parent removes when
they are gone, so ``/metrics`` from any worker sums them all (:mod:`server.metrics`). The background loops run in
every worker as they run in every instance: they lease rows (:mod:`server.lease`), so each piece of work is done
once. SIGTERM or SIGINT to the parent stops the proxy in front (if any) first, then each worker drains as a single
server does (:mod:`server.background`), and the parent waits for them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from types import FrameType

import uvicorn
from fastapi import FastAPI
from prometheus_client import multiprocess
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from uvicorn.supervisors import Multiprocess

from server import logs
from server.app import create_app
from server.db import Database
from server.notify.keys import load_vapid_keys, resolve_webhook_secret
from server.settings import Settings, resolve_secret_key

log = logging.getLogger(__name__)

#: How long a worker may take to start (lifespan: bucket check, scanner ping) before the instance gives up.
START_SECONDS = 120.0
#: A worker that does not answer the supervisor's ping for this long is taken for hung and replaced (uvicorn's 5 s
#: default would replace busy workers on a saturated machine, just when they are needed).
HEALTHCHECK_SECONDS = 30
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def worker_app(settings: Settings) -> FastAPI:
    """The app of one worker process (uvicorn calls it in the child: logging is configured there again)."""
    logs.configure(json=settings.log_json)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return create_app(settings, migrate=False)


def prepare(settings: Settings) -> None:
    """What the workers would otherwise race to do: migrate the schema and create the keys kept in ``DATA_DIR``."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
    finally:
        database.dispose()
    resolve_secret_key(settings)
    load_vapid_keys(settings)
    if settings.webhook_url:
        resolve_webhook_secret(settings)


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """A private (0700), empty ``PROMETHEUS_MULTIPROC_DIR`` for the workers started inside; removed afterwards."""
    path = tempfile.mkdtemp(prefix="smartcat-metrics-")
    previous = os.environ.get(METRICS_DIR_VARIABLE)
    os.environ[METRICS_DIR_VARIABLE] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(METRICS_DIR_VARIABLE, None)
        else:
            os.environ[METRICS_DIR_VARIABLE] = previous
        shutil.rmtree(path, ignore_errors=True)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, plus: ``on_ready`` once every worker serves (it returns False to stop the instance),
    ``before_stop`` before the workers are told to stop, a worker that died forgotten by the metrics, and a stop
    signal that also ends the wait for the workers' start."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        on_ready: Callable[[], bool],
        before_stop: Callable[[], None],
    ) -> None:
        super().__init__(config, sockets)
        self._on_ready = on_ready
        self._before_stop = before_stop
        self.failed = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._stop_signal)

    def _stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_queue.append(signum)
        self.should_exit.set()

    def init_processes(self) -> None:
        super().init_processes()
        started = all(process.wait_until_ready(START_SECONDS, self.should_exit) for process in self.processes)
        if self.should_exit.is_set():
            return
        if not started:
            log.error("a worker process did not start: stopping the instance")
        self.failed = not (started and self._on_ready())
        if self.failed:
            self.should_exit.set()

    @contextlib.contextmanager
    def _forgetting_the_gone(self) -> Iterator[None]:
        """Workers replaced or retired inside leave the metrics: their per-worker gauge would stay otherwise."""
        before = {process.pid for process in self.processes}
        yield
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]

    def keep_subprocess_alive(self) -> None:
        with self._forgetting_the_gone():
            super().keep_subprocess_alive()

    def restart_all(self) -> None:  # SIGHUP
        with self._forgetting_the_gone():
            super().restart_all()

    def handle_ttou(self) -> None:  # one worker fewer
        with self._forgetting_the_gone():
            super().handle_ttou()

    def terminate_all(self) -> None:
        self._before_stop()
        super().terminate_all()


def serve(
    settings: Settings,
    config: Callable[..., uvicorn.Config],
    app_socket: socket.socket | None,
    on_ready: Callable[[], bool],
    before_stop: Callable[[], None],
) -> bool:
    """Run ``settings.workers`` worker processes until a stop signal; False when they could not start.

    ``config(app, **more)`` makes the uvicorn config (host and port included); ``app_socket``: a socket bound for
    them already (behind the embedded proxy), else one is bound on the config's host and port."""
    if settings.workers > 1 and settings.rate_limit_storage_uri.startswith("memory://"):
        log.warning(
            "WORKERS=%d with RATE_LIMIT_STORAGE_URI=memory://: each worker counts alone, so each rate limit is "
            "allowed up to %d times; use redis:// to share the counters",
            settings.workers,
            settings.workers,
        )
    try:
        prepare(settings)
    except SQLAlchemyError as error:  # the database is down or refuses us: one line, no traceback
        where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"error: cannot migrate the database {where} before starting the workers: {reason}", file=sys.stderr)
        return False
    uvicorn_config = config(
        partial(worker_app, settings),
        factory=True,
        workers=settings.workers,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
    )
    sockets = [app_socket if app_socket is not None else uvicorn_config.bind_socket()]
    try:
        with metrics_dir():
            supervisor = Supervisor(uvicorn_config, sockets, on_ready, before_stop)
            supervisor.run()
    finally:
        if app_socket is None:
            sockets[0].close()
    return not supervisor.failed
