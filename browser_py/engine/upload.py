"""The upload state machine: one file, from "queued" to "completed", sans-I/O.

``Upload.handle(event)`` returns the commands to carry out. What an event means in each phase, and which phase may
follow which, is the one table in ``engine/phase.py``; which part goes next is ``engine/sending.py``; what the card
says is ``engine/view.py``. Adapters only execute commands and report what happened, so the same core runs in
Pyodide, in a terminal and under pytest.
"""

from __future__ import annotations

import random

from wire.plan import PartPlan, PlanError
from wire.view import BLOCKED_SCANS, UploadView

from .commands import (
    AbortUpload,
    CancelParts,
    Command,
    CompleteUpload,
    CreateSession,
    DiscardLocal,
    FetchState,
    HandOff,
    HashPart,
    PersistManifest,
    Publish,
    RequestUrls,
    SaveCopy,
    Wakeup,
)
from .config import EngineConfig
from .events import (
    ApiCall,
    BackgroundEnded,
    Cancel,
    Connectivity,
    CopyIncomplete,
    Event,
    FileChosen,
    HandOffAnswered,
    HideLeaveHint,
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
from .failures import NOT_STORAGE_MESSAGE, Failure, FailureKind
from .handoff import HandOffInputs, registration_id, wants_hand_off
from .manifest import Manifest
from .phase import IDLE, SENDING, Phase, check_transition, disposition
from .publication import Publisher
from .sending import PartScheduler
from .stall import StallWatch
from .throughput import ThroughputMeter
from .tuning import ConcurrencyTuner, TuningConfig
from .view import build_view

__all__ = ["EngineConfig", "Phase", "Upload"]

#: Why an upload stops when the part URLs it is given cannot be used (each follows "Action needed: ").
URLS_EXPIRE_TOO_SOON = "the upload links the server gives expire before they can be used; try again later"
STORAGE_CALLS_URLS_EXPIRED = (
    "the storage calls every fresh upload link expired (the clocks of the upload service and the storage disagree?)"
)
#: Why an upload found at boot waits for its file (follows "Action needed: ").
COPY_INCOMPLETE = "the browser had not finished saving this file; choose it again to continue where it stopped"


def different_bytes(number: int, file_name: str) -> str:
    """The file chosen again has other bytes where S3 already holds a part: refused, nothing changes."""
    return f"the file you chose has other bytes than {file_name} (part {number} differs); choose {file_name} again"


def unreadable_choice(reason: str) -> str:
    return f"the file you chose could not be read ({reason}); choose it again"


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
        self.phase = Phase.QUEUED
        self.error: Failure | None = None
        self.meter = ThroughputMeter()
        self.stalls = StallWatch(self.config.stall_factor, self.config.stall_min, self.config.stall_initial)
        self.scheduler = PartScheduler(manifest, self.config)
        self.now = 0.0
        self._api_attempts = 0
        self._api_retry: dict[ApiCall, float] = {}
        self._wakeup_at: float | None = None
        self._creating = False
        self._not_storage_run = 0  # part answers in a row that were not the storage's (engine/failures.py)
        self.resumed_from: int | None = None  # bytes confirmed when this run resumed an earlier one
        self.bytes_sent_this_run = 0
        self.told_to_leave = False  # once said, it stays said: a banner that comes and goes is noise
        self.leave_hint_hidden = False  # until the user says "Got it"
        # Seconds the engine keeps running after the last page closes (SharedWorker extendedLifetime); None: it
        # stops with the last page. Only the words depend on it: the engine does the same either way.
        self.keeps_running_for: float | None = None
        self._publisher = Publisher(self.config.view_interval)
        # Handing the rest to the browser's Background Fetch (engine/handoff.py): possible here (the deployment's
        # part URLs are same-origin and a page has the API), decided, over once in this run (refused, or ended: what
        # is left then is the engine's to send), and registered but not yet confirmed by the page asked (until then
        # no page's list of running registrations counts).
        self.background_fetch = False
        self._hand_off_wanted = False
        self._hand_off_over = False
        self.awaiting_registration = False
        # Every part left is hashed and signed: no new PUT starts, and the hand-off waits until each one in flight
        # has settled (answered or failed), so the browser never starts a part the engine is still sending. A part
        # aborted meanwhile (stalled) may still land at the store: it is withheld from the hand-off, the engine's.
        self.draining = False
        self._withheld: set[int] = set()
        # The file chosen again after a crash (engine/phase.py NEEDS_FILE, CHECKING): the parts S3 holds still to
        # hash, those being hashed, and hashes asked for and not yet answered (a refused choice leaves some behind).
        self._to_check: list[int] = []
        self._checking: set[int] = set()
        self._checks_out: dict[int, int] = {}
        # The source is a file chosen again: from then on a part S3 holds counts only if it was checked against that
        # file or sent from it (it is in the manifest); any other is sent again.
        self.chosen_again = False
        # The server's malware scan of the completed object (wire.view.SCAN_TEXT), and how often it was polled.
        self.scan_status: str | None = None
        self.scan_signature: str | None = None
        self._scan_polls = 0
        self.tuner: ConcurrencyTuner | None = None
        if self.config.adaptive_concurrency:
            top = max(TuningConfig().max_concurrency, self.config.concurrency)
            tuning = TuningConfig(initial_concurrency=self.config.concurrency, max_concurrency=top)
            self.tuner = ConcurrencyTuner(tuning)

    # ----------------------------------------------------------------------------------------------- queries

    @property
    def concurrency(self) -> int:
        """Parts in flight allowed now: fixed, or what the tuner learned from this link; fewer while the browser's
        copy is made, so the copy that makes the file safe is not starved."""
        allowed = self.tuner.concurrency if self.tuner is not None else self.config.concurrency
        return allowed if self.manifest.staged else min(allowed, self.config.saving_concurrency)

    @property
    def plan(self) -> PartPlan | None:
        return self.manifest.plan

    @property
    def in_flight(self) -> frozenset[int]:
        return frozenset(self.scheduler.in_flight)

    @property
    def is_idle(self) -> bool:
        """Nothing will happen until the user acts, the queue admits it, or it is finished."""
        return self.phase in IDLE

    def view(self) -> UploadView:
        return build_view(self)

    def link_measurement(self) -> tuple[float | None, float]:
        """(bytes/s one PUT moved, share of PUTs that failed) in this run: what sizes the next upload's parts."""
        if self.tuner is not None:
            return self.tuner.per_connection_rate, self.tuner.error_rate
        per_byte = self.stalls.seconds_per_byte
        return (1 / per_byte if per_byte else None), 0.0

    def stall_bound(self, number: int) -> float:
        """Seconds part ``number`` may take before it counts as stalled, from how long finished parts took."""
        plan = self.plan
        if plan is None:
            return self.config.stall_initial
        return self.stalls.bound(plan.length_of(number))

    # ----------------------------------------------------------------------------------------------- events

    def handle(self, event: Event) -> list[Command]:
        self.now = max(self.now, event.now)
        out: list[Command] = []
        if disposition(event, self.phase):
            self._dispatch(event, out)
        if self.phase is Phase.UPLOADING:
            self._consider_hand_off(out)
        if self.phase is Phase.UPLOADING and not self.draining:
            self._pump(out)
        self._note_leave_hint()
        self._publish(out)
        self._schedule_wakeup(out)
        return out

    def _dispatch(self, event: Event, out: list[Command]) -> None:
        match event:
            case Start():
                self._begin(out)
            case Staged():
                self._on_staged(out)
            case SourceLost(reason=reason):
                self._fail(out, Failure(FailureKind.SOURCE_LOST, reason))
            case CopyIncomplete():
                self._on_copy_incomplete(out)
            case FileChosen():
                self._on_file_chosen(out)
            case SessionCreated():
                self._on_session_created(event, out)
            case StateFetched():
                self._on_state(event, out)
            case UrlsReceived(urls=urls, expires_at=expires_at, server_now=server_now, background=background):
                usable = self.scheduler.urls_received(dict(urls), expires_at, self.now, server_now, background)
                self._after_urls(len(urls), usable, out)
            case PartHashed(number=number, sha256=sha256):
                if not self._check_answered(number):
                    self.scheduler.part_hashed(number, sha256)
                elif self.phase is Phase.CHECKING and number in self._checking:
                    self._on_checked(number, sha256, out)
            case PartSent(number=number, etag=etag):
                self._on_part_sent(number, etag, out)
            case PartFailed(number=number, failure=failure):
                self._on_part_failed(number, failure, out)
            case RequestFailed(call=call, failure=failure):
                self._on_request_failed(call, failure, out)
            case UploadCompleted(scan_status=scan, scan_signature=signature):
                self._on_completed(out, scan, signature)
            case Tick():
                self._on_tick(out)
            case Connectivity(online=online):
                self._on_connectivity(online, out)
            case Pause():
                self._stop_sending(out)
                self._enter(Phase.PAUSED)
            case Resume():
                self.error = None
                self._not_storage_run = 0
                self.scheduler.attempts.clear()
                self._api_attempts = 0
                self._begin(out)
            case Cancel():
                self._on_cancel(out)
            case HideLeaveHint():
                self.leave_hint_hidden = True
            case HandOffAnswered(registration_id=rid, refused=refused):
                self._on_hand_off_answered(rid, refused, out)
            case BackgroundEnded(registration_id=rid):
                if rid == self.manifest.background_id and not self.awaiting_registration:
                    self._background_over(out)

    def _begin(self, out: list[Command]) -> None:
        """Start or restart (admitted from the queue, resumed, back online): from what the manifest says."""
        m = self.manifest
        if m.completed:
            self._on_completed(out)
        elif m.background_id is not None:
            self._enter(Phase.BACKGROUND)  # the browser has the parts until a page says it is done with them
        elif m.session_id is None:
            readable = m.staged or self.source_readable
            self._enter(Phase.CREATING if readable else Phase.SAVING)
            self._issue(ApiCall.CREATE, out)
        elif not m.staged and not self.source_readable:
            self._enter(Phase.SAVING)
        else:
            self.resumed_from = m.bytes_confirmed
            self._enter(Phase.RESUMING)  # ask S3 what it holds: PUTs cut by an outage may or may not have landed
            self._issue(ApiCall.STATE, out)

    def _on_staged(self, out: list[Command]) -> None:
        self.manifest.staged = True
        self._persist(out, wait=True)  # "saved, you can leave" must be true on disk before it is said
        if self.tuner is not None:
            self.tuner.conditions_changed(self.now)  # the copy competed with the PUTs; it no longer does
        if self.phase is Phase.SAVING:
            self._begin_uploading() if self.manifest.session_id is not None else self._enter(Phase.CREATING)

    def _on_copy_incomplete(self, out: list[Command]) -> None:
        """Found at boot without a complete copy: wait for the file, and meanwhile ask S3 what it holds, so the card
        shows the progress that is kept (the manifest may lag behind the last parts S3 confirmed)."""
        self.error = Failure(FailureKind.SOURCE_LOST, COPY_INCOMPLETE)
        self._enter(Phase.NEEDS_FILE)
        if self.manifest.session_id is not None:
            self._issue(ApiCall.STATE, out)

    def _on_file_chosen(self, out: list[Command]) -> None:
        """The same size and fingerprint (checked by the set): now hash it where S3 holds parts whose checksum we
        kept. Nothing changes until every one matches; a part S3 holds whose checksum never reached the disk cannot
        be checked, so it is sent again from this file."""
        m = self.manifest
        self._to_check = sorted(n for n in m.parts if n in m.checksums)
        self._checking.clear()
        self._enter(Phase.CHECKING)
        self._check_next(out)

    def _check_next(self, out: list[Command]) -> None:
        plan = self.plan
        while self._to_check and len(self._checking) < self.config.hash_concurrency:
            assert plan is not None, "parts are held only under a plan"
            number = self._to_check.pop(0)
            part = plan.part(number)
            self._checking.add(number)
            self._checks_out[number] = self._checks_out.get(number, 0) + 1
            out.append(HashPart(number, part.offset, part.length))
        if not self._to_check and not self._checking:
            self._source_checked(out)

    def _check_answered(self, number: int) -> bool:
        """True if a hash that just answered was one the check of a chosen file asked for."""
        left = self._checks_out.get(number, 0)
        if not left:
            return False
        if left == 1:
            del self._checks_out[number]
        else:
            self._checks_out[number] = left - 1
        return True

    def _on_checked(self, number: int, sha256: str, out: list[Command]) -> None:
        self._checking.discard(number)
        if self.manifest.checksums.get(number) != sha256:
            self._refuse_choice(out, different_bytes(number, self.manifest.file_name))
        else:
            self._check_next(out)

    def _refuse_choice(self, out: list[Command], reason: str) -> None:
        """Not the same file (or unreadable): back to waiting for the file, the upload as it was."""
        self._to_check.clear()
        self._checking.clear()
        self.error = Failure(FailureKind.SOURCE_LOST, reason)
        self._enter(Phase.NEEDS_FILE)

    def _source_checked(self, out: list[Command]) -> None:
        """Every part S3 holds that could be checked has the chosen file's bytes: keep those, send the rest from the
        chosen file while it is copied into the browser again, and wait for a place in the queue."""
        m = self.manifest
        m.parts = {n: etag for n, etag in m.parts.items() if n in m.checksums}
        m.checksums = {n: c for n, c in m.checksums.items() if n in m.parts}  # the rest is hashed from this file
        self.chosen_again = True
        self.source_readable = True
        self.error = None
        self._persist(out)
        out.append(SaveCopy(m.local_id))
        self._enter(Phase.QUEUED)

    def _on_session_created(self, event: SessionCreated, out: list[Command]) -> None:
        self._creating = False
        self._api_attempts = 0
        if self.phase is Phase.CANCELLED:
            out.append(AbortUpload(event.session_id, event.upload_token))  # the user cancelled while we were asking
            return
        try:
            plan = PartPlan(self.manifest.size, event.part_size, event.part_count)
        except PlanError as exc:
            self._fail(out, Failure(FailureKind.FATAL, f"the server proposed an impossible part plan: {exc}"))
            return
        m = self.manifest
        m.session_id, m.object_key, m.upload_token = event.session_id, event.object_key, event.upload_token
        m.part_size, m.part_count = event.part_size, event.part_count
        usable = self.scheduler.session_created(plan, dict(event.urls), event.expires_at, self.now, event.server_now)
        self._persist(out)
        if self.phase is Phase.CREATING:
            self._begin_uploading()
            self._after_urls(len(event.urls), usable, out)

    def _on_state(self, event: StateFetched, out: list[Command]) -> None:
        self._api_attempts = 0
        if event.status == "completed":
            self._on_completed(out, event.scan_status, event.scan_signature)
            return
        if self.phase is Phase.SCANNING:
            self._poll_scan_later()  # a completed session stays completed: an answer like this is a glitch
            return
        if event.status != "uploading":
            self._fail(out, Failure(FailureKind.SESSION_GONE, f"the upload session was {event.status}"))
            return
        plan = self.plan
        assert plan is not None, "a session without a plan cannot be resumed"
        # S3 is the truth: keep a part only if S3 holds it whole. Prefer our ETag (the latest PUT we saw succeed).
        # After a file was chosen again, only the parts checked against it count: another is sent again.
        merged: dict[int, str] = {}
        for part in event.parts:
            checked = not self.chosen_again or part.number in self.manifest.parts
            if 1 <= part.number <= plan.part_count and part.size == plan.length_of(part.number) and checked:
                merged[part.number] = self.manifest.parts.get(part.number, part.etag)
        self.manifest.parts = merged
        self._persist(out)
        if self.phase is Phase.RESUMING:
            self._begin_uploading()

    def _on_part_sent(self, number: int, etag: str, out: list[Command]) -> None:
        started = self.scheduler.part_sent(number)
        plan = self.plan
        if plan is None:
            return
        # Recorded whatever the phase: the bytes are on S3 even if the user paused meanwhile.
        self.manifest.parts[number] = etag
        self._not_storage_run = 0
        length = plan.length_of(number)
        self.bytes_sent_this_run += length
        self.meter.record(self.now, length)
        if started is not None:
            self.stalls.part_finished(length, self.now - started)
            if self.tuner is not None:
                self.tuner.part_sent(self.now, length, self.now - started)
        if self.phase is Phase.UPLOADING:
            self.resumed_from = None
        self._persist(out)

    def _on_part_failed(self, number: int, failure: Failure, out: list[Command]) -> None:
        if self._check_answered(number):
            if self.phase is Phase.CHECKING and number in self._checking:
                self._refuse_choice(out, unreadable_choice(failure.message))
            return
        if self.scheduler.hash_failed(number):  # the bytes could not even be read
            if self.phase is Phase.UPLOADING:
                self._fail(out, failure)
            return
        if self.scheduler.in_flight.pop(number, None) is None or self.phase is not Phase.UPLOADING:
            return
        if failure.kind is FailureKind.URL_EXPIRED:
            # Fresh URLs come with the next request: not a failure. But a storage that calls fresh URLs expired
            # again and again would make that a loop: from the second time in a row the part waits (backoff),
            # and when the budget is spent the user hears why.
            again = self.scheduler.url_expired(number) - 1
            if again and self.config.backoff.exhausted(again):
                self._fail(out, Failure(FailureKind.FATAL, STORAGE_CALLS_URLS_EXPIRED, failure.status, failure.code))
            elif again:
                self.scheduler.hold(number, self.now + self.config.backoff.delay(again, self._rng))
            return
        if not failure.counts_against_budget:
            self._fail(out, failure)
            return
        if failure.kind is FailureKind.NOT_STORAGE:
            # Retried like a lost connection; but a run of them with no real storage answer in between means the
            # network itself is in the way (a portal wanting a login), and retrying alone will not get past it.
            self._not_storage_run += 1
            if self._not_storage_run >= self.config.not_storage_limit:
                self._fail(out, Failure(FailureKind.NOT_STORAGE, NOT_STORAGE_MESSAGE, failure.status))
                return
        if failure.kind is FailureKind.BAD_DIGEST:
            # S3 saw other bytes than were hashed: hash the slice again and sign a new URL with that checksum.
            self.manifest.checksums.pop(number, None)
            self.scheduler.forget_url(number)
        if self.tuner is not None:
            self.tuner.part_failed(self.now)  # lost to the link or the store: fewer connections may fare better
        attempt = self.scheduler.attempts.get(number, 0) + 1
        if self.config.backoff.exhausted(attempt):
            self._fail(out, failure)
            return
        self.scheduler.retry_later(number, self.now + self.config.backoff.delay(attempt, self._rng))

    def _on_request_failed(self, call: ApiCall, failure: Failure, out: list[Command]) -> None:
        if call is ApiCall.CREATE:
            self._creating = False
        if call is ApiCall.URLS:
            self.scheduler.urls_requested = False
        if call is ApiCall.ABORT or self.phase in IDLE:
            return
        if self.phase is Phase.SCANNING:
            # The file is uploaded whatever the service says now: ask again later, never "Action needed".
            if call is ApiCall.STATE:
                self._poll_scan_later()
            return
        if failure.kind is not FailureKind.TRANSIENT:
            self._fail(out, failure)
            return
        self._api_attempts += 1
        if self.config.backoff.exhausted(self._api_attempts):
            self._fail(out, failure)
            return
        self._api_retry[call] = self.now + self.config.backoff.delay(self._api_attempts, self._rng)

    def _after_urls(self, received: int, usable: int, out: list[Command]) -> None:
        """A refresh that yields no URL fit to start a PUT is a failed refresh: asking again at once would loop
        (it did: 90 requests a second when a clock was off). Back off, and give up with the reason."""
        if received == 0 or usable:
            self._api_attempts = 0
            return
        self._api_attempts += 1
        if self.config.backoff.exhausted(self._api_attempts):
            self._fail(out, Failure(FailureKind.FATAL, URLS_EXPIRE_TOO_SOON))
            return
        self._api_retry[ApiCall.URLS] = self.now + self.config.backoff.delay(self._api_attempts, self._rng)

    def _on_completed(self, out: list[Command], scan: str | None = None, signature: str | None = None) -> None:
        """The server assembled the object. With scanning on it first waits in quarantine ("pending"): the card
        says so and the verdict is polled; only a released object is "Completed" (and toasted by the set)."""
        uploaded_before = self.phase is Phase.SCANNING
        self.scan_status, self.scan_signature = scan, signature
        if scan == "pending":
            self._enter(Phase.SCANNING)
            self._poll_scan_later()
        else:
            self._enter(Phase.BLOCKED if scan in BLOCKED_SCANS else Phase.COMPLETED)
        if not uploaded_before:
            # The bytes are on S3 for good: the browser's copy and the manifest have done their job.
            self.manifest.completed = True
            self.meter.stop()
            out.append(DiscardLocal(self.manifest.local_id))

    def _poll_scan_later(self) -> None:
        """Ask for the verdict again after a capped, growing, jittered delay (1 s, 2 s, 4 s … 20 s): a scan takes
        seconds to minutes, and many waiting browsers must not poll in step."""
        self._scan_polls += 1
        ceiling = self.config.scan_poll.ceiling(self._scan_polls)
        self._api_retry[ApiCall.STATE] = self.now + self._rng.uniform(ceiling / 2, ceiling)

    def _on_tick(self, out: list[Command]) -> None:
        # A tick means the one timer rang, whatever the time it carries: a timer may ring a little early (clocks
        # of different resolution), and a wakeup still kept here would never be asked for again.
        self._wakeup_at = None
        for call, at in list(self._api_retry.items()):
            if at <= self.now:
                del self._api_retry[call]
                if call is not ApiCall.URLS:  # URL requests are re-issued by the pump when needed
                    self._issue(call, out)
        self._abort_stalled(out)

    def _abort_stalled(self, out: list[Command]) -> None:
        if self.phase is not Phase.UPLOADING:
            return
        in_flight = self.scheduler.in_flight
        stalled = [n for n, started in in_flight.items() if self.now - started >= self.stall_bound(n)]
        if not stalled:
            return
        out.append(CancelParts(tuple(stalled)))
        self.stalls.part_stalled()
        if self.draining:
            self._withheld.update(stalled)  # aborted, not settled: it may still land while the browser sends it
        for number in stalled:
            waited = self.now - in_flight[number]
            failure = Failure(FailureKind.TRANSIENT, f"part {number} stalled ({waited:.0f} s without an answer)")
            self._on_part_failed(number, failure, out)

    def _on_connectivity(self, online: bool, out: list[Command]) -> None:
        if not online and self.phase in SENDING:
            self._stop_sending(out)
            self._enter(Phase.OFFLINE)
        elif online and self.phase is Phase.OFFLINE:
            self._begin(out)

    def _consider_hand_off(self, out: list[Command]) -> None:
        """Once the rest will not finish in a worker that may lose its last page (engine/handoff.py): hash every part
        left and get its URL, start no new PUT, let those in flight settle, and hand over every part that is not
        confirmed then (none is the engine's and the browser's at once, none is sent twice)."""
        m, plan = self.manifest, self.plan
        if plan is None:
            return
        if not self._hand_off_wanted:
            remaining = m.size - m.bytes_confirmed
            eta = self.meter.eta_range(self.now, remaining)
            inputs = HandOffInputs(
                enabled=self.background_fetch,
                over=self._hand_off_over,
                staged=m.staged,
                parts_left=plan.part_count - len(m.parts),
                eta_high=eta[2] if eta else None,
                grace=self.keeps_running_for,
                threshold=self.config.leave_threshold,
            )
            self._hand_off_wanted = wants_hand_off(inputs)
            if not self._hand_off_wanted:
                return
        ready = self.scheduler.prepare_hand_off(self.now, self._api_retry.get(ApiCall.URLS, 0.0), out)
        parts = None if ready is None else tuple(p for p in ready if p.number not in self._withheld)
        if ready is not None and not parts:
            # Nothing left (the pump completes it), or only parts the engine may still be storing: its own.
            self._hand_off_wanted, self._hand_off_over = False, bool(ready)
            self.draining = False
            self._withheld.clear()
            return
        self.draining = True  # no new PUT from now on: each one in flight settles, the rest is the browser's
        if parts is None or self.scheduler.in_flight:
            return  # still hashing or signing, or PUTs to settle first: a part that lands then is not handed off
        assert m.session_id is not None
        self._stop_sending(out)  # no PUT is in flight; pending retries are the browser's now
        m.background_id = registration_id(m.session_id, m.upload_token)
        self.awaiting_registration = True
        self.told_to_leave = True
        self._persist(out, wait=True)  # a crash from here on finds the registration (or learns it never was)
        out.append(HandOff(m.local_id, m.background_id, m.file_name, parts))
        self._enter(Phase.BACKGROUND)

    def _on_hand_off_answered(self, rid: str, refused: str | None, out: list[Command]) -> None:
        if rid != self.manifest.background_id or not self.awaiting_registration:
            return  # a late answer from another page: the first one decided
        self.awaiting_registration = False
        if refused is not None:
            self._background_over(out)  # sent by the engine, as without the API

    def _background_over(self, out: list[Command]) -> None:
        """The parts are the engine's again: S3 says which the browser stored (the Service Worker may even have
        completed the upload); the rest is sent as on any resume."""
        self.manifest.background_id = None
        self._hand_off_wanted, self._hand_off_over = False, True  # not again in this run: no hand-off loop
        self._persist(out)
        if self.phase is Phase.BACKGROUND:
            self._begin(out)

    def _on_cancel(self, out: list[Command]) -> None:
        self._stop_sending(out)
        self._enter(Phase.CANCELLED)
        if self.manifest.session_id is not None:
            out.append(AbortUpload(self.manifest.session_id, self.manifest.upload_token))
        out.append(DiscardLocal(self.manifest.local_id))

    # ----------------------------------------------------------------------------------------------- helpers

    def _enter(self, phase: Phase) -> None:
        """The one place the phase changes: the table in engine/phase.py says whether it may."""
        check_transition(self.phase, phase)
        self.phase = phase

    def _begin_uploading(self) -> None:
        self._enter(Phase.UPLOADING)
        self.meter.start(self.now)

    def _fail(self, out: list[Command], failure: Failure) -> None:
        self._stop_sending(out)
        self.error = failure
        self._enter(Phase.FAILED)

    def _stop_sending(self, out: list[Command]) -> None:
        self.scheduler.stop(out)
        self.draining = False  # its PUTs are aborted: a hand-off later drains again
        self._withheld.clear()
        self._api_retry.clear()
        self.meter.stop()
        if self.tuner is not None:
            self.tuner.pause(self.now)  # idle time must not read as a slow link

    def _persist(self, out: list[Command], wait: bool = False) -> None:
        out.append(PersistManifest(self.manifest.local_id, self.manifest.to_json(), wait))

    def _issue(self, call: ApiCall, out: list[Command]) -> None:
        m = self.manifest
        if call is ApiCall.CREATE:
            if not self._creating:
                self._creating = True
                part_size = self.config.part_size
                out.append(CreateSession(m.file_name, m.size, m.content_type, m.fingerprint, part_size=part_size))
                self.scheduler.hash_first_part_early(m.staged or self.source_readable, out)
        elif call is ApiCall.STATE:
            assert m.session_id is not None
            out.append(FetchState(m.session_id, m.upload_token))
        elif call is ApiCall.COMPLETE:
            assert m.session_id is not None
            out.append(CompleteUpload(m.session_id, tuple(sorted(m.parts.items())), m.upload_token))

    def _pump(self, out: list[Command]) -> None:
        before = len(out)
        done = self.scheduler.pump(self.now, self.concurrency, self._api_retry.get(ApiCall.URLS, 0.0), out)
        asks = [i for i, c in enumerate(out) if i >= before and isinstance(c, RequestUrls)]
        if asks and not self.manifest.staged:
            # A part may be on S3 as soon as its PUT starts. Until the browser's copy is complete, a crash means
            # choosing the file again, which is checked against these checksums: they are on disk before any PUT
            # starts, or S3's part could not be trusted and would be sent again. The URL request goes meanwhile (the
            # save queues behind the copy's writes: awaiting it cost the first byte a round trip's worth).
            saved = PersistManifest(self.manifest.local_id, self.manifest.to_json(), before_parts=True)
            out.insert(asks[0], saved)
        if done:
            self._api_retry.pop(ApiCall.URLS, None)
            self._enter(Phase.COMPLETING)
            self.meter.stop()
            self._issue(ApiCall.COMPLETE, out)

    def _schedule_wakeup(self, out: list[Command]) -> None:
        times = [t for t in self.scheduler.retry_at.values() if t > self.now]
        times += [t for t in self._api_retry.values() if t > self.now]
        if self.phase is Phase.UPLOADING:
            times += [started + self.stall_bound(n) for n, started in self.scheduler.in_flight.items()]
        if self._publisher.due is not None:
            times.append(self._publisher.due)
        at = min(times) if times else None
        if at is not None and at != self._wakeup_at:
            self._wakeup_at = at
            out.append(Wakeup(at))

    def _note_leave_hint(self) -> None:
        """Once the file is safe in the browser and the wait is long, the user is told they need not stay."""
        if self.told_to_leave or self.phase is not Phase.UPLOADING or not self.manifest.staged:
            return
        eta = self.meter.eta(self.now, self.manifest.size - self.manifest.bytes_confirmed)
        self.told_to_leave = eta is not None and eta > self.config.leave_threshold

    def _publish(self, out: list[Command]) -> None:
        view = self._publisher.offer(self.view(), self.now, hold=not self.is_idle)
        if view is not None:
            out.append(Publish(view))
