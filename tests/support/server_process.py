"""The environment of a real ``python -m server`` process (what ``make run`` starts) for a test: the embedded
SeaweedFS and the app on free ports, data in the test's directory, nothing inherited that would point elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import REPO_ROOT
from tests.support.ports import free_seaweed_ports

#: Settings this process's environment may carry that would send the child to another store, database or proxy.
_NOT_INHERITED = ("S3_", "SEAWEED_", "DATABASE_URL", "EMBEDDED_", "NGINX_", "PART_URL_BASE", "FORWARDED_ALLOW_IPS")


def server_environment(tmp_path: Path, port: int, **more: str) -> tuple[dict[str, str], int]:
    """The child's environment and the S3 port its SeaweedFS will listen on; ``more`` adds or overrides settings."""
    s3, master, volume, filer, admin = free_seaweed_ports(5)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)},
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3}",
        "SEAWEED_MASTER_PORT": str(master),
        "SEAWEED_VOLUME_PORT": str(volume),
        "SEAWEED_FILER_PORT": str(filer),
        "SEAWEED_ADMIN_PORT": str(admin),
        "DATA_DIR": str(tmp_path / "var"),
        "PORT": str(port),
        "PUBLIC_ORIGIN": f"http://127.0.0.1:{port}",
        "EMBEDDED_S3": "true",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO_ROOT),
        **more,
    }, s3


def stop(process: subprocess.Popen[str], signum: int, timeout: float = 30) -> None:
    """Send ``signum`` and wait for the exit; a process that outlives ``timeout`` is killed and the test fails."""
    process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """``python -m server`` in ``tmp_path`` and its output up to the line saying where it runs (or to its end: a
    failed start cannot hang the test)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "server"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "Smartcat uploader running at" in line:
            break
    return process, lines


def main_in_process(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``server.__main__.main()`` in this process with exactly ``env`` and ``tmp_path`` as its directory, for a start
    refused before anything runs (a child would spend its time importing); its SIGTERM handler is undone after."""
    from server.__main__ import main

    for name in os.environ:
        monkeypatch.delenv(name)
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.chdir(tmp_path)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        return main()
    finally:
        signal.signal(signal.SIGTERM, sigterm)
