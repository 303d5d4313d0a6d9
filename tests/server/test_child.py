"""server.child: the start-up wait and stop every child server (SeaweedFS, nginx, Redis, clamd, app instances) uses."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.child import check_port_free, tail, terminate, wait_until_ready


class LaunchError(RuntimeError):
    pass


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A child that runs until stopped and answers nothing."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    terminate(process, 5)


def test_a_child_that_exits_during_start_up_is_named_with_its_code_and_log(tmp_path: Path) -> None:
    log = tmp_path / "child.out"
    log.write_text("starting\nfatal: disk on fire\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(LaunchError, match=r"^store exited with code 3 during start-up\nstarting\nfatal: disk on fire$"):
        wait_until_ready("store at :1", {"store": process}, lambda: False, 60, error=LaunchError,
                         report=lambda: tail(log, 2))  # fmt: skip


def test_a_child_that_never_answers_fails_after_its_timeout(sleeper: subprocess.Popen[bytes]) -> None:
    def refused() -> bool:
        raise ConnectionRefusedError

    with pytest.raises(RuntimeError, match=r"^store at :1 did not answer within 0 s\n\(no output\)$"):
        wait_until_ready("store at :1", {"store": sleeper}, refused, 0.2, report=lambda: tail(Path("/nonexistent"), 5))
    assert sleeper.poll() is None, "the wait never stops the child: its caller does"


def test_transient_errors_are_waited_out_and_others_raise(sleeper: subprocess.Popen[bytes]) -> None:
    answers = iter([ConnectionRefusedError(), False, True])

    def ready() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    wait_until_ready("store", {"store": sleeper}, ready, 60, interval=0.001)
    with pytest.raises(ValueError, match="not a transient error"):
        wait_until_ready("store", {"store": sleeper}, lambda: bool(int("not a transient error")), 60)


def test_a_taken_port_is_refused_with_the_callers_error_and_hint() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(LaunchError, match=rf"^port {port} on 127.0.0.1 is taken \(.+\); stop the other one$"):
            check_port_free("127.0.0.1", port, LaunchError, "; stop the other one")
    check_port_free("127.0.0.1", port, LaunchError)


def test_terminate_kills_a_child_that_ignores_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"  # SIGTERM is ignored from here
    terminate(process, 0.2)
    assert process.returncode == -9
    terminate(process, 0.2)  # an ended child: nothing to do
    terminate(None, 0.2)
