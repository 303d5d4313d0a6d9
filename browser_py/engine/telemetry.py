"""What only the browser sees of its uploads, accumulated for ``POST /api/telemetry`` (sans-I/O: times come in).

The driver shows the accumulator every event it feeds a machine and the commands the machine answered with; from
them it notes retries by failure class, stalls (parts a ``Tick`` cancelled), offline periods, pauses, resumes and
their cause, and the throughput achieved while parts were in flight. The adapter takes a batch when
:meth:`Telemetry.due` says so (an upload ended, or ``flush_seconds`` passed) and puts it back if sending failed.
Nothing personal is kept: uploads are named by their server session id only (see :mod:`wire.telemetry`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from wire.telemetry import MAX_EVENTS, MAX_UPLOADS, TelemetryBatch, TelemetryEvent, UploadTelemetry, WorkerBoot

from .commands import CancelParts, Command, SendPart
from .events import Cancel as CancelEvent
from .events import (
    Connectivity,
    Event,
    PartFailed,
    PartSent,
    Pause,
    RequestFailed,
    Resume,
    SessionCreated,
    Tick,
    UploadCompleted,
)

#: A batch goes out at least this often while something happened (seconds).
FLUSH_SECONDS = 300.0


@dataclass(slots=True)
class _Upload:
    session_id: str = ""
    events: list[TelemetryEvent] = field(default_factory=list)
    dropped: int = 0
    offline_since: float | None = None
    #: Parts in flight: number -> length; bytes confirmed and seconds with parts in flight, for the throughput.
    in_flight: dict[int, int] = field(default_factory=dict)
    busy_since: float | None = None
    sent_bytes: int = 0
    busy_seconds: float = 0.0
    phase: str = ""

    def add(self, event: TelemetryEvent) -> None:
        if len(self.events) < MAX_EVENTS - 1:  # room for the "dropped" note
            self.events.append(event)
        else:
            self.dropped += 1

    def busy_until(self, now: float) -> None:
        if self.busy_since is not None:
            self.busy_seconds += max(0.0, now - self.busy_since)
            self.busy_since = now if self.in_flight else None
        elif self.in_flight:
            self.busy_since = now

    @property
    def throughput(self) -> float:
        return self.sent_bytes / self.busy_seconds if self.busy_seconds > 0 else 0.0


class Telemetry:
    """The telemetry of one browser's uploads since the last batch was taken."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self._uploads: dict[str, _Upload] = {}
        self._boot: WorkerBoot | None = None
        self._ended = False
        self._since: float | None = None

    # ---- what happened ----------------------------------------------------------------------------------------

    def booted(self, mode: str, seconds: float) -> None:
        self._boot = WorkerBoot(mode, round(max(0.0, seconds), 3))

    def resumed(self, local_id: str, session_id: str, now: float, cause: str) -> None:
        """An upload found at start continues (``cause``: tab_closed, crash, restart)."""
        upload = self._upload(local_id, now)
        upload.session_id = upload.session_id or session_id
        upload.add(TelemetryEvent(now, "resumed", cause))

    def observe(self, local_id: str, session_id: str, event: Event, commands: Iterable[Command], phase: str) -> None:
        """The machine of ``local_id`` (session ``session_id``, "" before it has one) handled ``event``, answered
        ``commands`` and is now in ``phase``."""
        now = event.now
        upload = self._upload(local_id, now)
        if isinstance(event, SessionCreated):
            upload.session_id = event.session_id
        elif session_id:
            upload.session_id = session_id
        upload.busy_until(now)
        self._note_event(upload, event, phase)
        for command in commands:
            if isinstance(command, SendPart):
                upload.in_flight[command.number] = command.length
            elif isinstance(command, CancelParts):
                for number in command.numbers:
                    upload.in_flight.pop(number, None)
                if isinstance(event, Tick):  # only a stall cancels parts on a timer
                    upload.add(TelemetryEvent(now, "stall", value=len(command.numbers)))
        upload.busy_until(now)
        if phase != upload.phase:
            self._note_phase(upload, phase, now, event)
            upload.phase = phase

    def _note_event(self, upload: _Upload, event: Event, phase: str) -> None:
        now = event.now
        match event:
            case PartSent(number=number):
                upload.sent_bytes += upload.in_flight.pop(number, 0)
            case PartFailed(number=number, failure=failure):
                upload.in_flight.pop(number, None)
                upload.add(TelemetryEvent(now, "retry", failure.kind.value))
            case RequestFailed(failure=failure):
                upload.add(TelemetryEvent(now, "retry", failure.kind.value))
            case Connectivity(online=False) if phase == "offline" and upload.offline_since is None:
                upload.offline_since = now
                upload.in_flight.clear()
            case Connectivity(online=True) if upload.offline_since is not None:
                upload.add(TelemetryEvent(now, "offline", value=round(now - upload.offline_since, 3)))
                upload.add(TelemetryEvent(now, "resumed", "network"))
                upload.offline_since = None
            case Pause():
                upload.add(TelemetryEvent(now, "paused"))
            case Resume():
                upload.add(TelemetryEvent(now, "resumed", "user"))
            case UploadCompleted():
                upload.add(TelemetryEvent(now, "completed", value=round(upload.throughput, 1)))
                self._ended = True
            case CancelEvent():
                upload.add(TelemetryEvent(now, "cancelled"))
                self._ended = True

    def _note_phase(self, upload: _Upload, phase: str, now: float, event: Event) -> None:
        if phase == "failed":
            failure = getattr(event, "failure", None)
            kind = failure.kind.value if failure is not None else "fatal"
            upload.add(TelemetryEvent(now, "failed", kind))
            self._ended = True

    def _upload(self, local_id: str, now: float) -> _Upload:
        if self._since is None:
            self._since = now
        return self._uploads.setdefault(local_id, _Upload())

    # ---- batches ----------------------------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        """Whether a batch should go now: an upload ended, or the oldest untaken fact is ``flush_seconds`` old."""
        if not self._pending():
            return False
        return self._ended or (self._since is not None and now - self._since >= self.flush_seconds)

    def _pending(self) -> bool:
        return self._boot is not None or any(u.session_id and (u.events or u.dropped) for u in self._uploads.values())

    def take(self, now: float) -> TelemetryBatch | None:
        """The batch of everything not yet taken (uploads with a session id), or None; what is taken is cleared."""
        if not self._pending():
            return None
        uploads: list[UploadTelemetry] = []
        for upload in self._uploads.values():
            if not upload.session_id or not (upload.events or upload.dropped) or len(uploads) == MAX_UPLOADS:
                continue
            events = list(upload.events)
            if upload.dropped:
                events.append(TelemetryEvent(now, "dropped", value=upload.dropped))
            uploads.append(UploadTelemetry(upload.session_id, tuple(events)))
            upload.events, upload.dropped = [], 0
        batch = TelemetryBatch(tuple(uploads), self._boot, round(now, 3))
        self._boot, self._ended = None, False
        self._since = now if self._pending() else None
        self._forget_finished()
        return batch

    def put_back(self, batch: TelemetryBatch) -> None:
        """A batch that could not be sent is kept for the next one (bounded: what no longer fits is dropped)."""
        by_session = {u.session_id: u for u in self._uploads.values() if u.session_id}
        for sent in batch.uploads:
            upload = by_session.get(sent.session_id)
            if upload is None:
                upload = self._uploads.setdefault(f"session:{sent.session_id}", _Upload(session_id=sent.session_id))
            kept = [e for e in sent.events if e.kind != "dropped"]
            dropped = sum(int(e.value) for e in sent.events if e.kind == "dropped")
            upload.events[:0] = kept
            overflow = max(0, len(upload.events) - (MAX_EVENTS - 1))
            if overflow:
                del upload.events[-overflow:]
            upload.dropped += dropped + overflow
        if batch.boot is not None and self._boot is None:
            self._boot = batch.boot
        if self._since is None and self._pending():
            self._since = batch.sent_at

    def _forget_finished(self) -> None:
        """Uploads that ended and have nothing left to send are dropped (the record would grow for ever)."""
        finished = ("completed", "cancelled", "failed", "blocked", "")
        for local_id, upload in list(self._uploads.items()):
            if upload.phase in finished and not upload.events and not upload.in_flight:
                del self._uploads[local_id]
