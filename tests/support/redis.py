"""A private Redis for tests and load runs: Debian's ``redis-server`` on 127.0.0.1, a free port, no persistence.

Several server instances share their rate-limit counters through it (``RATE_LIMIT_STORAGE_URI=redis://…``).
``make redis`` installs the package; its system-wide service is neither needed nor used.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import redis

from server.child import tail, terminate, wait_until_ready
from tests.support.ports import free_port

INSTALL_HINT = "Redis server not found: install Debian's redis-server (`make redis`)"


class RedisServer:
    """``redis-server`` as a child process: ``url`` once started, everything removed when stopped."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).is_file():
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="smartcat-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        command = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes",
            "--save", "", "--appendonly", "no", "--dir", str(self.root), "--logfile", str(self.root / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with redis.Redis.from_url(self.url, socket_timeout=1.0) as client:
            wait_until_ready(
                f"redis-server on port {self.port}", {"redis-server": self.process}, lambda: bool(client.ping()),
                timeout, report=lambda: tail(self.root / "redis.log", 40), transient=(redis.ConnectionError,),
            )  # fmt: skip
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process, 10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
