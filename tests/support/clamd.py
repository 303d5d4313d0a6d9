"""A real ClamAV daemon (Debian's ``clamav-daemon``) for tests, with a signature database made here.

No machine here reaches ClamAV's signature mirrors, so the database is one ``.hdb`` line that ``sigtool --md5``
makes from the EICAR test file: clamd then answers ``eicar.com.UNOFFICIAL FOUND`` for it and OK for anything else,
through the same INSTREAM path production uses. Start-up (loading one signature) takes about a second.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

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
        limit = f"{STREAM_MAX_BYTES // (1024 * 1024)}M"
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
                    f"MaxScanSize {limit}",
                    f"MaxFileSize {limit}",
                    "AlertExceedsMax yes",
                    "",
                ]
            )
        )

    def start(self) -> None:
        log = (self.directory / "clamd.out").open("ab")
        self.process = subprocess.Popen(
            [str(CLAMD), "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"clamd exited: {(self.directory / 'clamd.out').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("clamd did not answer PING within 60 s")
            time.sleep(0.05)

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).startswith(b"PONG")
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_clamd(directory: Path) -> ClamdService:
    """A started clamd with the EICAR test signature; the caller stops it."""
    if not CLAMD.exists() or shutil.which(str(SIGTOOL)) is None:
        raise RuntimeError("clamd/sigtool missing: `make clamav` installs Debian's clamav-daemon")
    service = ClamdService(directory)
    service.prepare()
    service.start()
    return service
