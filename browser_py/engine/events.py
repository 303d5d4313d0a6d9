"""Events: what happened, fed into :class:`~browser_py.engine.upload.Upload`; each carries the time it happened."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .failures import Failure


class ApiCall(StrEnum):
    """The calls to the presign service, so a failure can name which one to repeat."""

    CREATE = "create"
    STATE = "state"
    URLS = "urls"
    COMPLETE = "complete"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class RemotePart:
    """A part the storage already holds (from ListParts)."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class Start:
    now: float


@dataclass(frozen=True, slots=True)
class Staged:
    """The local copy now holds every byte of the file."""

    now: float


@dataclass(frozen=True, slots=True)
class SourceLost:
    """The bytes are no longer readable (an incomplete local copy after the tab closed, or a deleted file)."""

    now: float
    reason: str


@dataclass(frozen=True, slots=True)
class CopyIncomplete:
    """Found at boot: the browser's copy of the file never completed (the browser died first). The bytes S3 holds
    are kept; the upload waits for the user to choose the same file again."""

    now: float


@dataclass(frozen=True, slots=True)
class FileChosen:
    """The user chose a file for an upload that needs it again, of the same size and fingerprint (the set of uploads
    checked): the machine checks the parts S3 holds against it, then continues from them."""

    now: float


@dataclass(frozen=True, slots=True)
class SessionCreated:
    now: float
    session_id: str
    object_key: str
    part_size: int
    part_count: int
    urls: Mapping[int, str] = field(default_factory=dict)
    expires_at: float = 0.0  # on the server's clock
    upload_token: str = ""  # a capability for this session, kept with the manifest (survives a lost cookie)
    server_now: float | None = None  # the server's clock when it signed the URLs (None: an older server)


@dataclass(frozen=True, slots=True)
class StateFetched:
    now: float
    status: str  # "uploading" | "completed" | "aborted"
    parts: tuple[RemotePart, ...] = ()
    scan_status: str | None = None  # once completed: the malware scan (wire.view.SCAN_TEXT); None: not scanned
    scan_signature: str | None = None


@dataclass(frozen=True, slots=True)
class UrlsReceived:
    """Fresh part URLs. ``expires_at`` is on the server's clock, as is ``server_now`` (when it signed them): their
    difference is the URLs' lifetime, whatever this device's clock says."""

    now: float
    urls: Mapping[int, str]
    expires_at: float
    server_now: float | None = None
    background: bool = False  # asked for a hand-off: signed to outlive Background Fetch's queue


@dataclass(frozen=True, slots=True)
class PartSent:
    now: float
    number: int
    etag: str


@dataclass(frozen=True, slots=True)
class PartHashed:
    now: float
    number: int
    sha256: str  # base64, as S3 wants it


@dataclass(frozen=True, slots=True)
class PartFailed:
    now: float
    number: int
    failure: Failure


@dataclass(frozen=True, slots=True)
class RequestFailed:
    now: float
    call: ApiCall
    failure: Failure


@dataclass(frozen=True, slots=True)
class UploadCompleted:
    now: float
    etag: str
    scan_status: str | None = None  # "pending": the object waits in quarantine for its malware scan
    scan_signature: str | None = None


@dataclass(frozen=True, slots=True)
class HandOffAnswered:
    """The page asked to register the hand-off answered: the registration exists (``refused`` None) or could not be
    made (the reason)."""

    now: float
    registration_id: str
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class BackgroundEnded:
    """A page says the browser's Background Fetch registration is no longer running (it finished, failed, was
    aborted, or is gone): the parts are the engine's again."""

    now: float
    registration_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


@dataclass(frozen=True, slots=True)
class Connectivity:
    """The browser (or OS) says the network went away or came back."""

    now: float
    online: bool


@dataclass(frozen=True, slots=True)
class Pause:
    now: float


@dataclass(frozen=True, slots=True)
class Resume:
    """Continue after a pause, or try again after "Action needed" (the retry budget starts afresh)."""

    now: float


@dataclass(frozen=True, slots=True)
class Cancel:
    now: float


@dataclass(frozen=True, slots=True)
class HideLeaveHint:
    """The user said "Got it" to the "you can leave" banner: no page shows it again for this upload."""

    now: float


Event = (
    Start
    | Staged
    | SourceLost
    | CopyIncomplete
    | FileChosen
    | SessionCreated
    | StateFetched
    | UrlsReceived
    | PartSent
    | PartHashed
    | PartFailed
    | RequestFailed
    | UploadCompleted
    | HandOffAnswered
    | BackgroundEnded
    | Tick
    | Connectivity
    | Pause
    | Resume
    | Cancel
    | HideLeaveHint
)
