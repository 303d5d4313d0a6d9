"""Client telemetry: what only the browser sees of an upload, sent in batches to ``POST /api/telemetry``.

No personal data: no file names, sizes, addresses or user ids. An upload is named by its session id (random,
issued by the server, which checks that the caller owns it); everything else is a closed word from the sets below
or a number. The server refuses anything outside them (``server/telemetry/schemas.py`` mirrors these bounds, and
a test checks the two agree).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TELEMETRY_PATH = "/api/telemetry"

#: What an upload's telemetry event says happened.
EVENT_KINDS = (
    "retry",  # a part or service call failed and is retried; detail: the failure class
    "stall",  # parts were aborted for taking too long; value: how many
    "offline",  # the upload waited for the network; value: seconds (sent when it is back)
    "paused",  # paused by the user
    "resumed",  # continued; detail: the cause (RESUME_CAUSES)
    "completed",  # value: throughput achieved by this browser while sending (bytes/s)
    "failed",  # stopped with "Action needed"; detail: the failure class
    "cancelled",
    "dropped",  # more events than a batch may hold happened; value: how many were left out
)
#: The failure classes (browser_py.engine.failures.FailureKind values).
FAILURE_CLASSES = (
    "transient",
    "url_expired",
    "bad_digest",
    "session_gone",
    "source_lost",
    "not_storage",
    "fatal",
)
#: Why an upload continued: every tab was closed (the page said goodbye), the browser or worker died without
#: saying so, the network came back, the user resumed it, or the terminal uploader was run again.
RESUME_CAUSES = ("tab_closed", "crash", "network", "user", "restart")
#: How the engine started: from the memory snapshot, plain Pyodide, or the terminal uploader.
BOOT_MODES = ("snapshot", "plain", "cli")

#: Bounds of one batch (the server refuses more).
MAX_UPLOADS = 20
MAX_EVENTS = 100
MAX_SESSION_ID = 64
#: Event times may be this far from the server's clock (seconds): a batch kept across an offline day is dropped.
MAX_CLOCK_SKEW = 7 * 24 * 3600
#: Largest number an event may carry (a throughput of 1 TB/s, or offline for 30 years).
MAX_VALUE = 1e12


@dataclass(frozen=True, slots=True)
class TelemetryEvent:
    at: float  # epoch seconds on the browser's clock
    kind: str
    detail: str = ""
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class UploadTelemetry:
    session_id: str
    events: tuple[TelemetryEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerBoot:
    mode: str
    seconds: float


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    uploads: tuple[UploadTelemetry, ...] = ()
    boot: WorkerBoot | None = None
    #: When the batch was sent, on the browser's clock: the server shifts event times by its own clock's difference.
    sent_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        if self.boot is None:
            body.pop("boot")
        return body
