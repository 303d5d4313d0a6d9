"""The upload state machine: one file, from "saving to this browser" to "completed", sans-I/O.

``Upload.handle(event)`` returns the commands to carry out. All decisions live here: which part goes next, how many
are in flight, when URLs are stale, what a failure means, how long to back off, what the user is told. Adapters only
execute commands and report what happened, so the same core runs in Pyodide, in a terminal and under pytest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .backoff import Backoff
from .commands import (
    AbortUpload,
    CancelParts,
    Command,
    CompleteUpload,
    CreateSession,
    DiscardLocal,
    FetchState,
    HashPart,
    PersistManifest,
    Publish,
    RequestUrls,
    SendPart,
    Wakeup,
)
from .events import (
    ApiCall,
    Cancel,
    Connectivity,
    Event,
    PartFailed,
    PartHashed,
    PartSent,
    Pause,
    RequestFailed,
    Resume,
    SessionCreated,
    SourceLost,
    Staged,
    Start,
    StateFetched,
    Tick,
    UploadCompleted,
    UrlsReceived,
)
from .failures import Failure, FailureKind
from .manifest import Manifest
from .plan import PartPlan, PlanError, plan_parts
from .stall import StallWatch
from .throughput import ThroughputMeter
from .tuning import ConcurrencyTuner, TuningConfig
from .wording import eta_text, size_text, speed_text

LEAVE_BANNER = (
    "Saved. You can keep working — we're uploading in the background. "
    "You can even close this tab; we'll pick up where we left off next time."
)


class Phase(StrEnum):
    NEW = "new"
    SAVING = "saving"  # copying the picked file into the browser; the session is created meanwhile
    CREATING = "creating"
    RESUMING = "resuming"  # asking the server which parts S3 already has
    UPLOADING = "uploading"
    COMPLETING = "completing"
    COMPLETED = "completed"
    PAUSED = "paused"
    OFFLINE = "offline"  # waiting for the network; continues by itself when it is back
    FAILED = "failed"  # "Action needed": the user decides (retry, start over, cancel)
    CANCELLED = "cancelled"


IDLE_PHASES = frozenset({Phase.COMPLETED, Phase.PAUSED, Phase.FAILED, Phase.CANCELLED})


@dataclass(frozen=True, slots=True)
class EngineConfig:
    concurrency: int = 4
    url_batch: int = 16  # URLs asked for at once; more means fewer round trips, older URLs at the end
    url_refresh_margin: float = 60.0  # a URL expiring sooner than this is not used for a new PUT
    leave_threshold: float = 45.0  # above this ETA the user is told they need not wait
    hash_concurrency: int = 4  # parts hashed at once, up to one per PUT slot, so no slot waits for a checksum
    parallel_uploads: int = 2  # files uploading at once; more wait as "Queued" (their copy is saved meanwhile)
    # The part size asked of the server (None: its default). Knowing it, the first part is hashed while the session
    # is being created, both sides cutting it with the same plan_parts().
    part_size: int | None = None
    # Adapt parts in flight to measured goodput and failures (engine/tuning.py), starting at `concurrency`.
    adaptive_concurrency: bool = False
    # A PUT is stalled (aborted and retried) when it takes stall_factor times what finished parts took per byte,
    # and never sooner than stall_min; before any part finished, stall_initial applies (engine/stall.py).
    stall_factor: float = 4.0
    stall_min: float = 30.0
    stall_initial: float = 120.0
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.url_batch < 1:
            raise ValueError("url_batch must be at least 1")


@dataclass(slots=True)
class _Url:
    url: str
    expires_at: float
    received_at: float

    def usable(self, now: float, margin: float) -> bool:
        """Fresh enough to start a PUT: the margin shrinks for short-lived URLs, or they would never qualify."""
        lifetime = max(0.0, self.expires_at - self.received_at)
        return self.expires_at - now > min(margin, lifetime / 4)


class Upload:
    """One upload's decisions. Construct from a (new or loaded) manifest, then feed events."""

    def __init__(
        self,
        manifest: Manifest,
        config: EngineConfig | None = None,
        rng: random.Random | None = None,
        source_readable: bool = False,
    ) -> None:
        self.manifest = manifest
        # The picked file can be read while its copy is saved: parts go at once instead of after the whole copy
        # (pick → first byte in a fraction of a second). Resuming later still needs the complete copy.
        self.source_readable = source_readable
        self.config = config or EngineConfig()
        self._rng = rng or random.Random()
        self.phase = Phase.NEW
        self.error: Failure | None = None
        self.meter = ThroughputMeter()
        self.stalls = StallWatch(self.config.stall_factor, self.config.stall_min, self.config.stall_initial)
        self._now = 0.0
        self._urls: dict[int, _Url] = {}
        self._in_flight: dict[int, float] = {}  # part number -> when its PUT started
        self._hashing: set[int] = set()
        self._early_length: int | None = None  # part 1 being hashed before the session (and its plan) exists
        self._early_checksum: tuple[int, str] | None = None  # (length, checksum) of that part 1
        self._retry_at: dict[int, float] = {}
        self._attempts: dict[int, int] = {}
        self._urls_requested = False
        self._api_attempts = 0
        self._api_retry: dict[ApiCall, float] = {}
        self._wakeup_at: float | None = None
        self._creating = False
        self._resumed_from: int | None = None  # bytes confirmed when this run resumed an earlier one
        self.bytes_sent_this_run = 0
        self._last_view: dict[str, Any] | None = None
        self._told_to_leave = False
        self.tuner: ConcurrencyTuner | None = None
        if self.config.adaptive_concurrency:
            top = max(TuningConfig().max_concurrency, self.config.concurrency)
            tuning = TuningConfig(initial_concurrency=self.config.concurrency, max_concurrency=top)
            self.tuner = ConcurrencyTuner(tuning)

    @property
    def concurrency(self) -> int:
        """Parts in flight allowed now: fixed, or what the tuner learned from this link."""
        return self.tuner.concurrency if self.tuner is not None else self.config.concurrency

    # ----------------------------------------------------------------------------------------------- queries

    @property
    def plan(self) -> PartPlan | None:
        return self.manifest.plan

    @property
    def in_flight(self) -> frozenset[int]:
        return frozenset(self._in_flight)

    def link_measurement(self) -> tuple[float | None, float]:
        """(bytes/s one PUT moved, share of PUTs that failed) in this run: what sizes the next upload's parts."""
        if self.tuner is not None:
            return self.tuner.per_connection_rate, self.tuner.error_rate
        per_byte = self.stalls.seconds_per_byte
        return (1 / per_byte if per_byte else None), 0.0

    @property
    def is_idle(self) -> bool:
        """Nothing will happen until the user acts (or it is finished)."""
        return self.phase in IDLE_PHASES

    def _pending(self) -> list[int]:
        plan = self.plan
        if plan is None:
            return []
        done = self.manifest.parts
        return [n for n in range(1, plan.part_count + 1) if n not in done and n not in self._in_flight]

    # ----------------------------------------------------------------------------------------------- events

    def handle(self, event: Event) -> list[Command]:
        self._now = max(self._now, event.now)
        out: list[Command] = []
        match event:
            case Start():
                self._on_start(out)
            case Staged():
                self._on_staged(out)
            case SourceLost(reason=reason):
                self._fail(out, Failure(FailureKind.SOURCE_LOST, reason))
            case SessionCreated():
                self._on_session_created(event, out)
            case StateFetched():
                self._on_state(event, out)
            case UrlsReceived(urls=urls, expires_at=expires_at):
                self._urls_requested = False
                self._api_attempts = 0
                for number, url in urls.items():
                    self._urls[number] = _Url(url, expires_at, self._now)
            case PartHashed(number=number, sha256=sha256):
                self._on_part_hashed(number, sha256)
            case PartSent(number=number, etag=etag):
                self._on_part_sent(number, etag, out)
            case PartFailed(number=number, failure=failure):
                self._on_part_failed(number, failure, out)
            case RequestFailed(call=call, failure=failure):
                self._on_request_failed(call, failure, out)
            case UploadCompleted():
                self._on_completed(out)
            case Tick():
                self._on_tick(out)
                self._abort_stalled(out)
            case Connectivity(online=online):
                self._on_connectivity(online, out)
            case Pause():
                self._on_pause(out)
            case Resume():
                self._on_resume(out)
            case Cancel():
                self._on_cancel(out)
        self._pump(out)
        self._schedule_wakeup(out)
        self._publish(out)
        return out

    def _on_start(self, out: list[Command]) -> None:
        if self.phase is not Phase.NEW:
            return
        if self.manifest.completed:
            self.phase = Phase.COMPLETED
            out.append(DiscardLocal(self.manifest.local_id))
            return
        if self.manifest.session_id is None:
            readable = self.manifest.staged or self.source_readable
            self.phase = Phase.CREATING if readable else Phase.SAVING
            self._issue(ApiCall.CREATE, out)
        elif not self.manifest.staged:
            self.phase = Phase.SAVING
        else:
            self._resumed_from = self.manifest.bytes_confirmed
            self.phase = Phase.RESUMING
            self._issue(ApiCall.STATE, out)

    def _on_part_hashed(self, number: int, sha256: str) -> None:
        self._hashing.discard(number)
        plan = self.manifest.plan
        if number == 1 and self._early_length is not None:
            length, self._early_length = self._early_length, None
            if plan is None:
                self._early_checksum = (length, sha256)
                return
            if plan.length_of(1) != length:
                return  # the server cut other parts than asked: the pump hashes part 1 again
        if plan is not None and number not in self.manifest.parts:
            self.manifest.checksums[number] = sha256

    def _hash_first_part_early(self, out: list[Command]) -> None:
        """Hash part 1 while the session is created: its URL can be asked for the moment the session exists."""
        part_size = self.config.part_size
        if part_size is None or not (self.manifest.staged or self.source_readable):
            return
        try:
            length = plan_parts(self.manifest.size, part_size).length_of(1)
        except PlanError:
            return  # the server will say what is wrong with this file
        self._early_length = length
        self._hashing.add(1)
        out.append(HashPart(1, 0, length))

    def _on_staged(self, out: list[Command]) -> None:
        if self.phase in (Phase.CANCELLED, Phase.FAILED):
            return  # a cancelled upload's manifest must not come back
        self.manifest.staged = True
        self._persist(out, wait=True)  # "saved, you can leave" must be true on disk before it is said
        if self.tuner is not None:
            self.tuner.conditions_changed(self._now)  # the copy competed with the PUTs; it no longer does
        if self.phase is Phase.SAVING:
            self._begin_uploading() if self.manifest.session_id is not None else self._set(Phase.CREATING)

    def _on_session_created(self, event: SessionCreated, out: list[Command]) -> None:
        self._creating = False
        self._api_attempts = 0
        if self.phase is Phase.CANCELLED:
            out.append(AbortUpload(event.session_id, event.upload_token))  # the user cancelled while we were asking
            return
        try:
            PartPlan(self.manifest.size, event.part_size, event.part_count)
        except PlanError as exc:
            self._fail(out, Failure(FailureKind.FATAL, f"the server proposed an impossible part plan: {exc}"))
            return
        m = self.manifest
        m.session_id, m.object_key, m.upload_token = event.session_id, event.object_key, event.upload_token
        m.part_size, m.part_count = event.part_size, event.part_count
        early, self._early_checksum = self._early_checksum, None
        if early is not None and early[0] == PartPlan(m.size, m.part_size, m.part_count).length_of(1):
            m.checksums[1] = early[1]
        for number, url in event.urls.items():
            self._urls[number] = _Url(url, event.expires_at, self._now)
        self._persist(out)
        if self.phase is Phase.CREATING:
            self._begin_uploading()

    def _on_state(self, event: StateFetched, out: list[Command]) -> None:
        self._api_attempts = 0
        if event.status == "completed":
            self._on_completed(out)
            return
        if event.status != "uploading":
            self._fail(out, Failure(FailureKind.SESSION_GONE, f"the upload session was {event.status}"))
            return
        plan = self.plan
        assert plan is not None, "a session without a plan cannot be resumed"
        # S3 is the truth: keep a part only if S3 holds it whole. Prefer our ETag (the latest PUT we saw succeed).
        remote = {p.number: p for p in event.parts if 1 <= p.number <= plan.part_count}
        merged: dict[int, str] = {}
        for number, part in remote.items():
            if part.size == plan.length_of(number):
                merged[number] = self.manifest.parts.get(number, part.etag)
        self.manifest.parts = merged
        self._persist(out)
        if self.phase is Phase.RESUMING:
            self._begin_uploading()

    def _on_part_sent(self, number: int, etag: str, out: list[Command]) -> None:
        started = self._in_flight.pop(number, None)
        self._retry_at.pop(number, None)
        self._attempts.pop(number, None)
        plan = self.plan
        if plan is None or self.phase in (Phase.CANCELLED, Phase.COMPLETED):
            return
        # Recorded whatever the phase: the bytes are on S3 even if the user paused meanwhile.
        self.manifest.parts[number] = etag
        length = plan.length_of(number)
        self.bytes_sent_this_run += length
        self.meter.record(self._now, length)
        if started is not None:
            self.stalls.part_finished(length, self._now - started)
        if self.tuner is not None and started is not None:
            self.tuner.part_sent(self._now, length, self._now - started)
        self._resumed_from = None if self.phase is Phase.UPLOADING else self._resumed_from
        self._persist(out)

    def _on_part_failed(self, number: int, failure: Failure, out: list[Command]) -> None:
        if number in self._hashing:  # the bytes could not even be read
            self._hashing.discard(number)
            if number == 1:
                self._early_length = None
            if self.phase is Phase.UPLOADING:
                self._fail(out, failure)
            return
        if self._in_flight.pop(number, None) is None or self.phase is not Phase.UPLOADING:
            return
        if failure.kind is FailureKind.URL_EXPIRED:
            self._urls.pop(number, None)  # fresh URLs come with the next request; this is not a failure
            return
        if not failure.counts_against_budget:
            self._fail(out, failure)
            return
        if failure.kind is FailureKind.BAD_DIGEST:
            # S3 saw other bytes than were hashed: hash the slice again and sign a new URL with that checksum.
            self.manifest.checksums.pop(number, None)
            self._urls.pop(number, None)
        if self.tuner is not None:
            self.tuner.part_failed(self._now)  # lost to the link or the store: fewer connections may fare better
        attempt = self._attempts.get(number, 0) + 1
        self._attempts[number] = attempt
        if self.config.backoff.exhausted(attempt):
            self._fail(out, failure)
            return
        self._retry_at[number] = self._now + self.config.backoff.delay(attempt, self._rng)

    def _on_request_failed(self, call: ApiCall, failure: Failure, out: list[Command]) -> None:
        if call is ApiCall.CREATE:
            self._creating = False
        if call is ApiCall.URLS:
            self._urls_requested = False
        if call is ApiCall.ABORT or self.phase in IDLE_PHASES:
            return
        if failure.kind is not FailureKind.TRANSIENT:
            self._fail(out, failure)
            return
        self._api_attempts += 1
        if self.config.backoff.exhausted(self._api_attempts):
            self._fail(out, failure)
            return
        self._api_retry[call] = self._now + self.config.backoff.delay(self._api_attempts, self._rng)

    def _on_completed(self, out: list[Command]) -> None:
        self.phase = Phase.COMPLETED
        self.manifest.completed = True
        self.meter.stop()
        out.append(DiscardLocal(self.manifest.local_id))

    def _on_tick(self, out: list[Command]) -> None:
        # A tick means the one timer rang, whatever the time it carries: a timer may ring a little early (clocks
        # of different resolution), and a wakeup still kept here would never be asked for again.
        self._wakeup_at = None
        for call, at in list(self._api_retry.items()):
            if at <= self._now:
                del self._api_retry[call]
                if call is not ApiCall.URLS:  # URL requests are re-issued by the pump when needed
                    self._issue(call, out)

    def stall_bound(self, number: int) -> float:
        """Seconds part ``number`` may take before it counts as stalled, from how long finished parts took."""
        plan = self.plan
        if plan is None:
            return self.config.stall_initial
        return self.stalls.bound(plan.length_of(number))

    def _abort_stalled(self, out: list[Command]) -> None:
        if self.phase is not Phase.UPLOADING:
            return
        stalled = [n for n, started in self._in_flight.items() if self._now - started >= self.stall_bound(n)]
        if not stalled:
            return
        out.append(CancelParts(tuple(stalled)))
        self.stalls.part_stalled()
        for number in stalled:
            waited = self._now - self._in_flight[number]
            failure = Failure(FailureKind.TRANSIENT, f"part {number} stalled ({waited:.0f} s without an answer)")
            self._on_part_failed(number, failure, out)

    def _on_connectivity(self, online: bool, out: list[Command]) -> None:
        if not online and self.phase in (Phase.CREATING, Phase.RESUMING, Phase.UPLOADING):
            self._stop_sending(out)
            self.phase = Phase.OFFLINE
        elif online and self.phase is Phase.OFFLINE:
            self.phase = Phase.NEW
            self._on_start(out)  # ask S3 what it holds: PUTs cut by the outage may or may not have landed

    def _on_pause(self, out: list[Command]) -> None:
        if self.phase is Phase.OFFLINE:
            self.phase = Phase.PAUSED
            return
        if self.phase not in (Phase.CREATING, Phase.RESUMING, Phase.UPLOADING):
            return
        self._stop_sending(out)
        self.phase = Phase.PAUSED

    def _on_resume(self, out: list[Command]) -> None:
        if self.phase not in (Phase.PAUSED, Phase.FAILED):
            return
        self.error = None
        self._attempts.clear()
        self._retry_at.clear()
        self._api_attempts = 0
        self._api_retry.clear()
        self.phase = Phase.NEW
        self._on_start(out)

    def _on_cancel(self, out: list[Command]) -> None:
        if self.phase in (Phase.COMPLETED, Phase.CANCELLED):
            return
        self._stop_sending(out)
        self.phase = Phase.CANCELLED
        if self.manifest.session_id is not None:
            out.append(AbortUpload(self.manifest.session_id, self.manifest.upload_token))
        out.append(DiscardLocal(self.manifest.local_id))

    # ----------------------------------------------------------------------------------------------- helpers

    def _set(self, phase: Phase) -> None:
        self.phase = phase

    def _begin_uploading(self) -> None:
        self.phase = Phase.UPLOADING
        self.meter.start(self._now)

    def _fail(self, out: list[Command], failure: Failure) -> None:
        self._stop_sending(out)
        self.error = failure
        self.phase = Phase.FAILED

    def _stop_sending(self, out: list[Command]) -> None:
        if self._in_flight:
            out.append(CancelParts(tuple(sorted(self._in_flight))))
            self._in_flight.clear()
        self._retry_at.clear()
        self._api_retry.clear()
        self._urls_requested = False
        self.meter.stop()
        if self.tuner is not None:
            self.tuner.pause(self._now)  # idle time must not read as a slow link

    def _persist(self, out: list[Command], wait: bool = False) -> None:
        out.append(PersistManifest(self.manifest.local_id, self.manifest.to_json(), wait))

    def _issue(self, call: ApiCall, out: list[Command]) -> None:
        m = self.manifest
        if call is ApiCall.CREATE:
            if not self._creating:
                self._creating = True
                part_size = self.config.part_size
                out.append(CreateSession(m.file_name, m.size, m.content_type, m.fingerprint, part_size=part_size))
                if 1 not in self._hashing and self._early_checksum is None:
                    self._hash_first_part_early(out)
        elif call is ApiCall.STATE:
            assert m.session_id is not None
            out.append(FetchState(m.session_id, m.upload_token))
        elif call is ApiCall.COMPLETE:
            assert m.session_id is not None
            out.append(CompleteUpload(m.session_id, tuple(sorted(m.parts.items())), m.upload_token))

    def _pump(self, out: list[Command]) -> None:
        """Keep ``concurrency`` parts in flight, lowest part numbers first; ask for URLs just in time."""
        if self.phase is not Phase.UPLOADING:
            return
        plan = self.plan
        assert plan is not None and self.manifest.session_id is not None
        pending = self._pending()
        if not pending and not self._in_flight:
            self.phase = Phase.COMPLETING
            self.meter.stop()
            self._issue(ApiCall.COMPLETE, out)
            return
        margin = self.config.url_refresh_margin
        checksums = self.manifest.checksums
        self._hash_ahead(pending, out)
        need_urls: list[int] = []
        for number in pending:
            if len(self._in_flight) >= self.concurrency:
                break
            if self._retry_at.get(number, 0.0) > self._now or number not in checksums:
                continue
            url = self._urls.get(number)
            if url is None or not url.usable(self._now, margin):
                need_urls.append(number)
                continue
            part = plan.part(number)
            self._in_flight[number] = self._now
            self._retry_at.pop(number, None)
            out.append(SendPart(number, part.offset, part.length, url.url, checksums[number]))
        urls_gate = self._api_retry.get(ApiCall.URLS, 0.0)
        if self._urls_requested or urls_gate > self._now:
            return
        wanted = [
            (n, checksums[n])
            for n in pending
            if n not in self._in_flight
            and n in checksums
            and (n not in self._urls or not self._urls[n].usable(self._now, margin))
        ][: self.config.url_batch]
        # Ask at once when a free slot waits for a URL (first byte as early as possible); otherwise wait until
        # half a batch is hashed, so URLs come in few round trips.
        if wanted and (need_urls or len(wanted) >= max(1, self.config.url_batch // 2)):
            self._api_retry.pop(ApiCall.URLS, None)
            self._urls_requested = True
            out.append(RequestUrls(self.manifest.session_id, tuple(wanted), self.manifest.upload_token))

    def _hash_ahead(self, pending: list[int], out: list[Command]) -> None:
        """Hash the next parts before their turn: a URL can only be signed once the part's checksum is known.

        At most ``concurrency + url_batch`` parts are hashed ahead of sending, so a pause loses little work.
        """
        plan = self.plan
        assert plan is not None
        checksums = self.manifest.checksums
        ready = sum(1 for n in pending if n in checksums)
        window = self.concurrency + self.config.url_batch
        # Until the first PUT goes, the first part is hashed alone: it gets the whole CPU, so the first byte is early.
        limit = self.config.hash_concurrency if self._in_flight or ready else 1
        for number in pending:
            if len(self._hashing) >= limit or ready + len(self._hashing) >= window:
                return
            if number in checksums or number in self._hashing:
                continue
            part = plan.part(number)
            self._hashing.add(number)
            out.append(HashPart(number, part.offset, part.length))

    def _schedule_wakeup(self, out: list[Command]) -> None:
        times = [t for t in self._retry_at.values() if t > self._now]
        times += [t for t in self._api_retry.values() if t > self._now]
        if self.phase is Phase.UPLOADING:
            times += [started + self.stall_bound(n) for n, started in self._in_flight.items()]
        at = min(times) if times else None
        if at is not None and at != self._wakeup_at:
            self._wakeup_at = at
            out.append(Wakeup(at))

    def _publish(self, out: list[Command]) -> None:
        view = self.view()
        comparable = {k: v for k, v in view.items() if k not in ("speed_bps", "eta_seconds")}
        last = self._last_view
        if last is not None and {k: v for k, v in last.items() if k not in ("speed_bps", "eta_seconds")} == comparable:
            return
        self._last_view = view
        out.append(Publish(view))

    # ----------------------------------------------------------------------------------------------- view

    def view(self) -> dict[str, Any]:
        """What pages show: plain JSON-able data, with the wording decided here, not in JavaScript."""
        m = self.manifest
        confirmed = m.bytes_confirmed if m.plan is not None else 0
        percent = 100.0 if self.phase is Phase.COMPLETED else (confirmed / m.size * 100.0 if m.size else 0.0)
        rate = self.meter.rate(self._now) if self.phase is Phase.UPLOADING else None
        eta = self.meter.eta(self._now, m.size - confirmed) if self.phase is Phase.UPLOADING else None
        eta_range = self.meter.eta_range(self._now, m.size - confirmed) if self.phase is Phase.UPLOADING else None
        long_wait = eta is not None and eta > self.config.leave_threshold
        if long_wait and m.staged:
            self._told_to_leave = True  # once said, it stays said: a banner that comes and goes is noise
        still_going = self.phase not in (Phase.COMPLETED, Phase.CANCELLED, Phase.FAILED)
        return {
            "local_id": m.local_id,
            "session_id": m.session_id,
            "file_name": m.file_name,
            "size": m.size,
            "phase": self.phase.value,
            "label": self._label(percent),
            "bytes_confirmed": confirmed,
            "percent": round(percent, 1),
            "parts_done": len(m.parts),
            "part_count": m.part_count,
            "in_flight": len(self._in_flight),
            "concurrency": self.concurrency,
            "speed_bps": rate,
            "eta_seconds": eta,
            "error": self.error.message if self.error else None,
            "error_kind": self.error.kind.value if self.error else None,
            "resumed": self._resumed_from is not None,
            "saved": m.staged,  # the browser holds a complete copy: closing every tab is safe from here on
            "long_wait": long_wait,
            "eta_text": eta_text(eta_range),
            "speed_text": speed_text(rate),
            "bytes_text": f"{size_text(confirmed)} of {size_text(m.size)}",
            "size_text": size_text(m.size),
            # Once the file is safe in the browser and the wait is long, tell the user they need not stay.
            "banner": LEAVE_BANNER if self._told_to_leave and still_going else None,
            "bytes_sent_this_run": self.bytes_sent_this_run,
            "actions": self._actions(),
        }

    def _label(self, percent: float) -> str:
        whole = int(percent)
        if self.phase in (Phase.RESUMING, Phase.UPLOADING) and self._resumed_from is not None:
            return f"Resuming upload… {whole}% complete"
        return {
            Phase.NEW: "Queued",
            Phase.SAVING: "Saving to this browser",
            Phase.CREATING: "Starting upload",
            Phase.UPLOADING: "Uploading",
            Phase.COMPLETING: "Finishing",
            Phase.COMPLETED: "Completed",
            Phase.PAUSED: "Paused (by you)",
            Phase.OFFLINE: "Waiting for network",
            Phase.FAILED: f"Action needed: {self.error.message if self.error else 'unknown error'}",
            Phase.CANCELLED: "Cancelled",
        }.get(self.phase, self.phase.value)

    def _actions(self) -> list[str]:
        if self.phase in (Phase.CREATING, Phase.RESUMING, Phase.UPLOADING, Phase.OFFLINE):
            return ["pause", "cancel"]
        if self.phase is Phase.PAUSED:
            return ["resume", "cancel"]
        if self.phase is Phase.FAILED:
            if self.error is not None and self.error.kind in (FailureKind.SESSION_GONE, FailureKind.SOURCE_LOST):
                return ["cancel"]
            return ["retry", "cancel"]
        if self.phase in (Phase.SAVING, Phase.NEW):
            return ["cancel"]
        return []
