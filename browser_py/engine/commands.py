"""Commands: what the core asks its adapter to do. Each is plain data; the adapter decides *how*."""

from __future__ import annotations

from dataclasses import dataclass

from wire.view import UploadView

CHECKSUM_ALGORITHM = "SHA256"


@dataclass(frozen=True, slots=True)
class CreateSession:
    file_name: str
    size: int
    content_type: str
    fingerprint: str
    checksum_algorithm: str = CHECKSUM_ALGORITHM
    part_size: int | None = None  # asked of the server; None: its default


@dataclass(frozen=True, slots=True)
class FetchState:
    session_id: str
    upload_token: str = ""


@dataclass(frozen=True, slots=True)
class RequestUrls:
    """Presigned URLs for these parts, each signed with the part's SHA-256 (base64)."""

    session_id: str
    parts: tuple[tuple[int, str], ...]
    upload_token: str = ""
    background: bool = False  # for the hand-off (engine/handoff.py): URLs that outlive Background Fetch's queue

    @property
    def part_numbers(self) -> tuple[int, ...]:
        return tuple(n for n, _ in self.parts)


@dataclass(frozen=True, slots=True)
class HashPart:
    """Compute the SHA-256 of bytes ``[offset, offset + length)``; report PartHashed (or PartFailed)."""

    number: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class SendPart:
    """PUT bytes ``[offset, offset + length)`` of the source to ``url``; report PartSent or PartFailed."""

    number: int
    offset: int
    length: int
    url: str
    checksum_sha256: str  # sent as x-amz-checksum-sha256: it is signed into the URL and S3 verifies the bytes


@dataclass(frozen=True, slots=True)
class CancelParts:
    """Abort these in-flight PUTs; no event is expected for them."""

    numbers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PersistManifest:
    """Save the manifest. Saves may lag and coalesce (S3 stays the truth for which parts exist), except with
    ``wait``: then nothing after it runs before it is saved, because the user is about to rely on it (told the file
    is safe in this browser and every tab may close); and with ``before_parts``: other commands go on at once (the
    URL request), but no PUT starts before it (or a newer version) is saved."""

    local_id: str
    manifest_json: str
    wait: bool = False
    before_parts: bool = False


@dataclass(frozen=True, slots=True)
class CompleteUpload:
    session_id: str
    parts: tuple[tuple[int, str], ...]
    upload_token: str = ""


@dataclass(frozen=True, slots=True)
class AbortUpload:
    session_id: str
    upload_token: str = ""


@dataclass(frozen=True, slots=True)
class DiscardLocal:
    """Delete the local copy and the manifest: the upload is finished or cancelled."""

    local_id: str


@dataclass(frozen=True, slots=True)
class SaveCopy:
    """The file chosen again passed its checks: copy it into the browser (as at the first pick) while parts are
    read from it; report Staged when the copy is complete."""

    local_id: str


@dataclass(frozen=True, slots=True)
class HandOff:
    """Ask a page to register these PUTs with the browser's Background Fetch as ``registration_id`` (engine/
    handoff.py); report HandOffAnswered. The bytes are read from the browser's copy of ``local_id``."""

    local_id: str
    registration_id: str
    title: str
    parts: tuple[SendPart, ...]


@dataclass(frozen=True, slots=True)
class Wakeup:
    """Send a Tick at ``at`` (replacing any earlier request): a retry or a refresh is due then."""

    at: float


@dataclass(frozen=True, slots=True)
class Publish:
    """Tell every page the upload's new state."""

    view: UploadView


Command = (
    CreateSession
    | FetchState
    | RequestUrls
    | HashPart
    | SendPart
    | CancelParts
    | PersistManifest
    | CompleteUpload
    | AbortUpload
    | DiscardLocal
    | SaveCopy
    | HandOff
    | Wakeup
    | Publish
)
