"""Role interfaces the driver needs, each small (like tusd's): adapters implement them for CPython or Pyodide.

Failures cross these interfaces as data (:class:`~browser_py.engine.failures.Failure`), already classified, so the core
decides what they mean.
"""

from __future__ import annotations

from typing import Any, Protocol

from .engine.commands import HashPart, SendPart
from .engine.events import ApiCall
from .engine.failures import Failure


class TransportError(Exception):
    """The request never got an HTTP answer (connection refused or reset, DNS, offline, aborted)."""


class CallFailed(Exception):
    def __init__(self, call: ApiCall, failure: Failure) -> None:
        super().__init__(failure.message)
        self.call = call
        self.failure = failure


class SendFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class JsonHttp(Protocol):
    """JSON over HTTP to the presign service (httpx in CPython, fetch in the browser)."""

    async def request(
        self, method: str, path: str, body: Any | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Return (status, decoded JSON or None); raise TransportError when there is no answer."""
        ...


class PartSender(Protocol):
    """Reads parts of the source: hashes them, and sends them straight to presigned URLs."""

    async def sha256(self, command: HashPart) -> str:
        """Return the base64 SHA-256 of the part's bytes; raise SendFailed if they cannot be read."""
        ...

    async def send(self, command: SendPart) -> str:
        """PUT the part with its signed ``x-amz-checksum-sha256``; return its ETag; raise SendFailed."""
        ...


class ManifestStore(Protocol):
    """Keeps manifests (and, in the browser, the staged copies they describe) across restarts."""

    async def save(self, local_id: str, manifest_json: str) -> None: ...

    async def discard(self, local_id: str) -> None: ...
