"""ClamAV's daemon over INSTREAM, through ``clamav-client``: one verdict per object, or an error saying why not.

Objects are streamed (never held in memory or on disk). clamd refuses a stream longer than its ``StreamMaxLength``
and, unless ``AlertExceedsMax yes``, answers OK for content past ``MaxScanSize``/``MaxFileSize`` that it did not
look at; the worker therefore never sends an object larger than ``SCAN_MAX_BYTES`` (which clamd's limits must be at
least: the README's clamd.conf), and a "size limit exceeded" answer is a configuration error, retried and reported,
never a clean verdict.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from clamav_client.clamd import BufferTooLongError, ClamdError, ClamdNetworkSocket, ScanResults

#: Bytes per INSTREAM chunk. clamav-client sends 1 KiB chunks (a system call each: 65,536 for 64 MiB); 256 KiB
#: scans the same stream 2-4 times faster here (bench/scan.py) and stays far below any StreamMaxLength.
CHUNK_BYTES = 256 * 1024
#: What clamd (``AlertExceedsMax yes``) reports for content it stopped scanning at a limit.
LIMITS_EXCEEDED = "Heuristics.Limits.Exceeded"


class ScannerUnavailable(Exception):
    """The scanner could not give a verdict (unreachable, timed out, or refused the stream): try again later."""


@dataclass(frozen=True, slots=True)
class Verdict:
    #: The signature found; None: clean.
    signature: str | None

    @property
    def clean(self) -> bool:
        return self.signature is None

    @property
    def limits_exceeded(self) -> bool:
        """clamd stopped before the end (MaxScanSize, MaxFileSize, MaxScanTime, recursion…) and, with
        ``AlertExceedsMax yes``, said so as a "signature": not malware found, and not clean either."""
        return self.signature is not None and self.signature.startswith(LIMITS_EXCEEDED)


class _LargeChunks(ClamdNetworkSocket):
    """clamav-client's socket and protocol, with INSTREAM sent in :data:`CHUNK_BYTES` chunks."""

    def instream(self, buff: BinaryIO) -> ScanResults:
        try:
            self._init_socket()
            self._send_command("INSTREAM")
            while chunk := buff.read(CHUNK_BYTES):
                self.clamd_socket.sendall(struct.pack("!L", len(chunk)) + chunk)
            self.clamd_socket.sendall(struct.pack("!L", 0))
            result = self._recv_response()
            if not result:
                return {}
            if result == "INSTREAM size limit exceeded. ERROR":
                raise BufferTooLongError(result)
            filename, reason, status = self._parse_response(result)
            return {filename: (status, reason)}
        finally:
            self._close_socket()


class Readable(Protocol):
    def read(self, amt: int | None = ..., /) -> bytes: ...


class _Buffered(io.RawIOBase):
    """Large reads from a streaming body, handed out in the small chunks the client sends (cheap per call)."""

    def __init__(self, body: Readable) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Clamd:
    """One clamd reachable over TCP. Every call opens its own connection (clamd answers one command per one)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = f"{host}:{port}"
        self._socket = _LargeChunks(host, port, timeout=timeout)

    def ping(self) -> None:
        """Raise :class:`ScannerUnavailable` unless clamd answers PONG."""
        try:
            answer = self._socket.ping()
        except (ClamdError, OSError) as error:
            raise ScannerUnavailable(f"clamd at {self.address}: {error}") from error
        if answer != "PONG":
            raise ScannerUnavailable(f"clamd at {self.address} answered {answer!r} to PING")

    def scan(self, body: Readable) -> Verdict:
        """Stream ``body`` to clamd; the verdict, or :class:`ScannerUnavailable`."""
        stream: BinaryIO = io.BufferedReader(_Buffered(body), buffer_size=1024 * 1024)
        try:
            results = self._socket.instream(stream)
        except BufferTooLongError as error:
            raise ScannerUnavailable(
                f"clamd at {self.address} refused the stream as too long: its StreamMaxLength is below SCAN_MAX_BYTES"
            ) from error
        except (ClamdError, OSError) as error:
            raise ScannerUnavailable(f"clamd at {self.address}: {error}") from error
        status, found = results.get("stream", ("ERROR", "no answer"))
        if status == "OK":
            return Verdict(None)
        if status == "FOUND" and found:
            return Verdict(found)
        raise ScannerUnavailable(f"clamd at {self.address} could not scan the object: {found or status}")
