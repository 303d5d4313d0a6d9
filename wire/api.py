"""The presign API's JSON bodies as typed values, read strictly on the client side.

The client used to index answers by hand, so a renamed or retyped server field surfaced as a ``KeyError`` deep in
the engine and was retried as a "network error". Here every answer is checked once, on arrival, against the fields
the client relies on; anything else raises :class:`WireError` naming the type and the field. Unknown extra fields
are ignored, so the server may add fields without breaking older clients.

Pure standard library: this module ships in the engine wheel Pyodide loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self, TypeVar

T = TypeVar("T")

#: A JSON object as ``json.loads`` returns it and ``json.dumps`` takes it.
JsonObject = dict[str, object]


class WireError(ValueError):
    """An answer lacks a field the client relies on, or has it with another type (e.g. after a server rename)."""


# ---- reading answers -------------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """The offending value, short enough for an error message shown to a user."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Fields:
    """Typed access to the fields of one JSON object; every error says where (``Type.field[index].field``)."""

    def __init__(self, obj: object, where: str) -> None:
        if not isinstance(obj, dict):
            raise WireError(f"{where}: expected a JSON object, got {_show(obj)}")
        self._obj: dict[object, object] = obj
        self._where = where

    def _get(self, name: str) -> object:
        if name not in self._obj:
            raise WireError(f"{self._where}.{name}: missing")
        return self._obj[name]

    def _wrong(self, name: str, expected: str, value: object) -> WireError:
        return WireError(f"{self._where}.{name}: expected {expected}, got {_show(value)}")

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        return value

    def optional_text(self, name: str) -> str | None:
        """A string or null (fields the server leaves empty until the upload is done); still required."""
        value = self._get(name)
        if value is not None and not isinstance(value, str):
            raise self._wrong(name, "a string or null", value)
        return value

    def text_if_sent(self, name: str, allowed: frozenset[str] | None = None) -> str | None:
        """A string (one of ``allowed``), null, or left out (fields an older server does not send, such as the
        scan verdict)."""
        value = self.optional_text(name) if name in self._obj else None
        if value is not None and allowed is not None and value not in allowed:
            raise self._wrong(name, "one of " + ", ".join(sorted(allowed)), value)
        return value

    def integer(self, name: str) -> int:
        value = self._get(name)
        # bool is an int subclass in Python, but ``true`` is never a size or a part number.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(name, "an integer", value)
        return value

    def number(self, name: str) -> float:
        value = self._get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._wrong(name, "a number", value)
        return float(value)

    def optional_number(self, name: str) -> float | None:
        """A number a newer server adds: absent (an older server) or null is ``None``; any other type is an error."""
        value = self._obj.get(name)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._wrong(name, "a number", value)
        return float(value)

    def items(self, name: str, read: Callable[[_Fields], T]) -> tuple[T, ...]:
        value = self._get(name)
        if not isinstance(value, list):
            raise self._wrong(name, "a list", value)
        return tuple(read(_Fields(item, f"{self._where}.{name}[{i}]")) for i, item in enumerate(value))


#: The malware scan states of a completed upload (server ``ScanStatus``; wording in ``wire.view.SCAN_TEXT``).
SCAN_STATES = frozenset({"pending", "clean", "infected", "too_large", "unscanned"})


@dataclass(frozen=True, slots=True)
class PartUrl:
    """A presigned URL to PUT one part to, straight to S3."""

    part_number: int
    url: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        return cls._read(_Fields(obj, cls.__name__))

    @classmethod
    def _read(cls, f: _Fields) -> Self:
        return cls(part_number=f.integer("part_number"), url=f.text("url"))


@dataclass(frozen=True, slots=True)
class CreatedSession:
    """Answer to ``POST /api/uploads``: the server's part plan and the first batch of URLs (none when checksummed)."""

    session_id: str
    object_key: str
    upload_id: str
    part_size: int
    part_count: int
    status: str
    urls: tuple[PartUrl, ...]
    urls_expire_at: float  # epoch seconds, on the server's clock
    upload_token: str  # sent back as X-Upload-Token: resumes even if the identity cookie was lost
    server_now: float | None = None  # the server's clock when it signed: URL lifetimes are judged against it

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = _Fields(obj, cls.__name__)
        return cls(
            session_id=f.text("session_id"),
            object_key=f.text("object_key"),
            upload_id=f.text("upload_id"),
            part_size=f.integer("part_size"),
            part_count=f.integer("part_count"),
            status=f.text("status"),
            urls=f.items("urls", PartUrl._read),
            urls_expire_at=f.number("urls_expire_at"),
            upload_token=f.text("upload_token"),
            server_now=f.optional_number("server_now"),
        )


@dataclass(frozen=True, slots=True)
class SignedUrls:
    """Answer to ``POST /api/uploads/{id}/urls``."""

    urls: tuple[PartUrl, ...]
    expires_at: float  # epoch seconds, on the server's clock
    server_now: float | None = None  # the server's clock when it signed (absent from older servers)

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = _Fields(obj, cls.__name__)
        return cls(
            urls=f.items("urls", PartUrl._read),
            expires_at=f.number("expires_at"),
            server_now=f.optional_number("server_now"),
        )


@dataclass(frozen=True, slots=True)
class StoredPart:
    """A part S3 already holds: a resuming client skips it."""

    part_number: int
    etag: str
    size: int

    @classmethod
    def from_json(cls, obj: object) -> Self:
        return cls._read(_Fields(obj, cls.__name__))

    @classmethod
    def _read(cls, f: _Fields) -> Self:
        return cls(part_number=f.integer("part_number"), etag=f.text("etag"), size=f.integer("size"))


@dataclass(frozen=True, slots=True)
class SessionState:
    """Answer to ``GET /api/uploads/{id}``: the session and the parts S3 holds (none once it is finished)."""

    session_id: str
    object_key: str
    size: int
    part_size: int
    part_count: int
    status: str  # "uploading" | "completed" | "aborted" | "expired" | "failed"
    etag: str | None  # set once completed
    parts: tuple[StoredPart, ...]
    bytes_on_server: int
    scan_status: str | None = None  # the malware scan once completed (wire.view.SCAN_TEXT); None: not scanned
    scan_signature: str | None = None

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = _Fields(obj, cls.__name__)
        return cls(
            session_id=f.text("session_id"),
            object_key=f.text("object_key"),
            size=f.integer("size"),
            part_size=f.integer("part_size"),
            part_count=f.integer("part_count"),
            status=f.text("status"),
            etag=f.optional_text("etag"),
            parts=f.items("parts", StoredPart._read),
            bytes_on_server=f.integer("bytes_on_server"),
            scan_status=f.text_if_sent("scan_status", SCAN_STATES),
            scan_signature=f.text_if_sent("scan_signature"),
        )


@dataclass(frozen=True, slots=True)
class CompletedUpload:
    """Answer to ``POST /api/uploads/{id}/complete`` (the same on every repeat: complete is idempotent)."""

    session_id: str
    status: str
    object_key: str
    etag: str
    size: int
    #: "pending" while the object waits in quarantine for its malware scan (poll ``GET /api/uploads/{id}``);
    #: else the verdict (wire.view.SCAN_TEXT); None: not scanned.
    scan_status: str | None = None
    scan_signature: str | None = None

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = _Fields(obj, cls.__name__)
        return cls(
            session_id=f.text("session_id"),
            status=f.text("status"),
            object_key=f.text("object_key"),
            etag=f.text("etag"),
            size=f.integer("size"),
            scan_status=f.text_if_sent("scan_status", SCAN_STATES),
            scan_signature=f.text_if_sent("scan_signature"),
        )


# ---- request bodies --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateSessionRequest:
    """Body of ``POST /api/uploads``. Optional fields left as ``None`` are not sent, so the server's defaults apply."""

    file_name: str
    size: int
    content_type: str = "application/octet-stream"
    fingerprint: str = ""
    checksum_algorithm: str | None = None  # "SHA256": every part URL is signed with the part's checksum
    part_size: int | None = None  # preferred; the server may round it up

    def to_json(self) -> JsonObject:
        body: JsonObject = {
            "file_name": self.file_name,
            "size": self.size,
            "content_type": self.content_type,
            "fingerprint": self.fingerprint,
        }
        if self.checksum_algorithm is not None:
            body["checksum_algorithm"] = self.checksum_algorithm
        if self.part_size is not None:
            body["part_size"] = self.part_size
        return body


@dataclass(frozen=True, slots=True)
class PartChecksum:
    """A part to sign a URL for, with the base64 SHA-256 S3 will verify its bytes against."""

    part_number: int
    checksum_sha256: str

    def to_json(self) -> JsonObject:
        return {"part_number": self.part_number, "checksum_sha256": self.checksum_sha256}


@dataclass(frozen=True, slots=True)
class PresignUrlsRequest:
    """Body of ``POST /api/uploads/{id}/urls`` for a checksummed session (at most 100 parts per request)."""

    parts: tuple[PartChecksum, ...]
    background: bool = False  # for a hand-off to Background Fetch: URLs that outlive its queue

    def to_json(self) -> JsonObject:
        body: JsonObject = {"parts": [part.to_json() for part in self.parts]}
        if self.background:
            body["background"] = True
        return body


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """A part to assemble, with the ETag S3 gave its PUT."""

    part_number: int
    etag: str

    def to_json(self) -> JsonObject:
        return {"part_number": self.part_number, "etag": self.etag}


@dataclass(frozen=True, slots=True)
class CompleteRequest:
    """Body of ``POST /api/uploads/{id}/complete``: every part of the plan, each once."""

    parts: tuple[CompletedPart, ...]

    def to_json(self) -> JsonObject:
        return {"parts": [part.to_json() for part in self.parts]}
