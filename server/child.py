"""Child server processes: wait until one answers, stop it, say why it did not start.

SeaweedFS (:mod:`server.seaweed`) and nginx (:mod:`server.nginx`) run as children of the app; the tests run Redis,
clamd and whole app instances the same way. One home for the start-up wait and the stop, so every launcher fails
the same clear way (the child's exit code or the time it was given, then its log) and none leaves a child behind.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def check_port_free(host: str, port: int, error: type[Exception], hint: str = "") -> None:
    """Raise ``error`` when ``port`` on ``host`` is taken; else readiness polling could mistake another server for
    the child. Like Go's and nginx's listeners, TIME_WAIT leftovers of a previous run do not count as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as cause:
            raise error(f"port {port} on {host} is taken ({cause.strerror}){hint}") from cause


def wait_until_ready(
    name: str,
    children: Mapping[str, subprocess.Popen[bytes]],
    ready: Callable[[], bool],
    timeout: float,
    *,
    error: type[Exception] = RuntimeError,
    report: Callable[[], str] = lambda: "",
    transient: tuple[type[Exception], ...] = (OSError,),
    interval: float = 0.05,
) -> None:
    """Poll ``ready()`` until it is true; raise ``error`` with ``report()`` (a log tail) as soon as one of
    ``children`` (by name) exits, or once ``timeout`` seconds have passed. ``transient`` errors of ``ready()``
    (connection refused while the child binds) count as not ready yet."""
    deadline = time.monotonic() + timeout
    while True:
        for child, process in children.items():
            if process.poll() is not None:
                raise error(f"{child} exited with code {process.returncode} during start-up\n{report()}")
        try:
            if ready():
                return
        except transient:
            pass
        if time.monotonic() >= deadline:
            raise error(f"{name} did not answer within {timeout:.0f} s\n{report()}")
        time.sleep(interval)


def terminate(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM (the child's graceful stop), then SIGKILL if ``process`` has not exited after ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL at once, as a crash would."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(5)


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a child's log, for an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:])
