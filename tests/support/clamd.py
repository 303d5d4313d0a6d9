"""A real ClamAV daemon (Debian's ``clamav-daemon``) for tests, with a signature database made here.

No machine here reaches ClamAV's signature mirrors, so the database is one ``.hdb`` line that ``sigtool --md5``
makes from the EICAR test file: clamd then answers ``eicar.com.UNOFFICIAL FOUND`` for it and OK for anything else,
through the same INSTREAM path production uses. Start-up (loading one signature) takes about a second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from server.child import tail, terminate, wait_until_ready
from tests.support.ports import free_port

if TYPE_CHECKING:
    from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

CLAMD = Path("/usr/sbin/clamd")
SIGTOOL = Path("/usr/bin/sigtool")
#: The signature name clamd reports for the test database's EICAR entry.
EICAR_SIGNATURE = "eicar.com.UNOFFICIAL"
#: Streams up to this size are accepted (tests set ``SCAN_MAX_BYTES`` at most this).
STREAM_MAX_BYTES = 64 * 1024 * 1024


def eicar() -> bytes:
    """The EICAR anti-virus test file, assembled at run time so no scanner on a developer's machine flags this
    source file."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclass
class ClamdService:
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: clamd's StreamMaxLength (under 4 GiB), and its MaxScanSize and MaxFileSize (None: the same).
    stream_max_bytes: int = STREAM_MAX_BYTES
    file_max_bytes: int | None = None

    @property
    def config(self) -> Path:
        return self.directory / "clamd.conf"

    def prepare(self) -> None:
        database = self.directory / "db"
        database.mkdir(parents=True, exist_ok=True)
        sample = self.directory / "eicar.com"
        sample.write_bytes(eicar())
        signature = subprocess.run(
            [str(SIGTOOL), "--md5", str(sample)], check=True, capture_output=True, cwd=self.directory
        ).stdout
        (database / "test.hdb").write_bytes(signature)
        limit = f"{self.stream_max_bytes // (1024 * 1024)}M"
        file_limit = f"{(self.file_max_bytes or self.stream_max_bytes) // (1024 * 1024)}M"
        self.config.write_text(
            "\n".join(
                [
                    f"DatabaseDirectory {database}",
                    f"TCPSocket {self.port}",
                    "TCPAddr 127.0.0.1",
                    "Foreground yes",
                    f"LogFile {self.directory / 'clamd.log'}",
                    f"PidFile {self.directory / 'clamd.pid'}",
                    f"TemporaryDirectory {self.directory}",
                    # The limits production must set too: at least SCAN_MAX_BYTES, and content past a limit is an
                    # alert (Heuristics.Limits.Exceeded), never a silent OK.
                    f"StreamMaxLength {limit}",
                    f"MaxScanSize {file_limit}",
                    f"MaxFileSize {file_limit}",
                    "AlertExceedsMax yes",
                    # A loaded machine's scan of a big file must not run into the 2-minute default.
                    "MaxScanTime 1800000",
                    "",
                ]
            )
        )

    def start(self) -> None:
        log = self.directory / "clamd.out"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(CLAMD), "-c", str(self.config)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_until_ready("clamd", {"clamd": self.process}, self.answers, 60, report=lambda: tail(log, 40))
        except BaseException:
            self.stop()
            raise

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).startswith(b"PONG")
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        terminate(process, 15)


def start_clamd(directory: Path) -> ClamdService:
    """A started clamd with the EICAR test signature; the caller stops it."""
    if not CLAMD.exists() or shutil.which(str(SIGTOOL)) is None:
        raise RuntimeError("clamd/sigtool missing: `make clamav` installs Debian's clamav-daemon")
    service = ClamdService(directory)
    service.prepare()
    service.start()
    return service


class SlowClamd:
    """A TCP proxy in front of clamd that holds each INSTREAM answer for ``delay`` seconds (read when the answer
    arrives): a scan that takes a while, so a test can see two scanners at work at once or kill one mid-scan. PING
    and the other commands pass at once. ``held`` counts answers that clamd gave and the proxy held."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.held = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]

    def start(self) -> SlowClamd:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._listener.close()
        self.drop()

    def drop(self) -> None:
        """Cut every connection under way, as a clamd that goes down does."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        # clamd down: the client sees its connection closed.
        with client, contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.upstream_port)) as up:
            with self._lock:
                self._open.update((client, up))
            first = client.recv(65536)
            scanning = b"INSTREAM" in first[:16]
            up.sendall(first)
            threading.Thread(target=_pipe, args=(client, up), daemon=True).start()
            answer = up.recv(65536)
            if scanning and answer:
                with self._lock:
                    self.held += 1
                time.sleep(self.delay)
            client.sendall(answer)
            _pipe(up, client)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


def scanner_env(settings: Settings, clamd_port: int, **values: object) -> dict[str, str]:
    """The environment of a ``python -m server.scan`` process working for the server with ``settings``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": settings.resolved_database_url,
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key,
        "S3_BUCKET": settings.s3_bucket,
        "S3_REGION": settings.s3_region,
        "SCAN": "clamd",
        "CLAMD_HOST": "127.0.0.1",
        "CLAMD_PORT": str(clamd_port),
        "SCAN_MAX_BYTES": str(settings.scan_max_bytes),
        "SCAN_LEASE_SECONDS": str(settings.scan_lease_seconds),
        "OUTBOX_POLL_SECONDS": str(settings.outbox_poll_seconds),
        "OUTBOX_RETRY_BASE_SECONDS": str(settings.outbox_retry_base_seconds),
        "OUTBOX_RETRY_MAX_SECONDS": str(settings.outbox_retry_max_seconds),
    }
    env.update({name.upper(): str(value) for name, value in values.items()})
    return env


@dataclass
class ScannerProcess:
    """A ``python -m server.scan`` process; its log (stdout and stderr) in ``log``."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def started(self) -> bool:
        """Whether its loop runs (it logs "scanner started" then)."""
        return "scanner started" in self.text()

    def holds(self, lease_token: str | None) -> bool:
        """Whether ``lease_token`` is one of this process's (its log names its claimant instance)."""
        return lease_token is not None and f"claimant {lease_token.rsplit('-', 1)[0]}" in self.text()

    def scanned(self, session_id: str) -> int:
        """How many times this process scanned the session (its log says "session <id> scanned in")."""
        return self.text().count(f"session {session_id} scanned in")

    def stop(self) -> None:
        terminate(self.process, 15)


def start_scanners(env: dict[str, str], directory: Path, *names: str) -> list[ScannerProcess]:
    """Start scanner processes in ``directory`` (no ``.env`` there) at once, and wait until each one's loop runs."""
    scanners = []
    for name in names:
        log = directory / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "server.scan"], cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        scanners.append(ScannerProcess(process, log))
    try:
        for scanner in scanners:
            name = f"scanner {scanner.log.stem}"
            wait_until_ready(name, {name: scanner.process}, scanner.started, 60, report=scanner.text)
    except BaseException:
        for scanner in scanners:
            scanner.stop()
        raise
    return scanners
