"""The upload state machine, driven by hand: every decision is checked without any I/O or clock."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

import pytest

from browser_py.engine.backoff import Backoff
from browser_py.engine.commands import (
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
from browser_py.engine.events import (
    ApiCall,
    Cancel,
    Connectivity,
    HideLeaveHint,
    PartFailed,
    PartHashed,
    PartSent,
    Pause,
    RemotePart,
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
from browser_py.engine.failures import Failure, FailureKind
from browser_py.engine.manifest import Manifest
from browser_py.engine.upload import URLS_EXPIRE_TOO_SOON, EngineConfig, Phase, Upload
from browser_py.engine.view import LEAVE_BANNER, LEAVE_BANNER_FINISHES, LEAVE_BANNER_FOR_A_WHILE
from wire.plan import MiB

PART = 8 * MiB
TRANSIENT = Failure(FailureKind.TRANSIENT, "connection reset")
EXPIRED = Failure(FailureKind.URL_EXPIRED, "upload link expired", 403)



def feed(upload: Upload, event: object) -> list[Command]:
    """Handle ``event``, answering every HashPart at once (checksum ``c<n>``): what the adapter would do, instantly."""
    out = upload.handle(event)  # type: ignore[arg-type]
    todo = list(out)
    while todo:
        command = todo.pop(0)
        if isinstance(command, HashPart):
            more = upload.handle(PartHashed(getattr(event, "now", 0.0), command.number, f"c{command.number}"))
            out.extend(more)
            todo.extend(more)
    return out


def new_manifest(size: int = 10 * PART, staged: bool = True, **kw: object) -> Manifest:
    return Manifest("L", "big.bin", size, "application/octet-stream", "fp", staged=staged, **kw)  # type: ignore[arg-type]


def of(kind: type, commands: Iterable[Command]) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def urls(numbers: Iterable[int]) -> dict[int, str]:
    return {n: f"https://s3/part{n}" for n in numbers}


def created(
    now: float, count: int = 10, with_urls: Iterable[int] = range(1, 11), expires: float = 1_000
) -> SessionCreated:
    return SessionCreated(now, "S", "uploads/u/S", PART, count, urls(with_urls), expires)


def started(config: EngineConfig | None = None, size: int = 10 * PART) -> tuple[Upload, list[Command]]:
    upload = Upload(new_manifest(size=size), config or EngineConfig(concurrency=4), random.Random(1))
    feed(upload, Start(0.0))
    count = -(-size // PART)
    return upload, feed(upload, created(1.0, count=count, with_urls=range(1, count + 1)))


def test_new_upload_creates_a_session_then_keeps_concurrency_parts_in_flight() -> None:
    upload = Upload(new_manifest(), EngineConfig(concurrency=3), random.Random(1))
    first = feed(upload, Start(0.0))
    assert of(CreateSession, first) == [CreateSession("big.bin", 10 * PART, "application/octet-stream", "fp")]
    assert upload.phase is Phase.CREATING
    out = feed(upload, created(1.0))
    sends = of(SendPart, out)
    assert [(s.number, s.offset, s.length) for s in sends] == [
        (1, 0, PART),
        (2, PART, PART),
        (3, 2 * PART, PART),
    ]
    assert of(PersistManifest, out), "the session id must be saved before any byte is sent"
    assert upload.phase is Phase.UPLOADING
    # One part done: exactly one more starts, the lowest pending number.
    out = feed(upload, PartSent(2.0, 2, '"e2"'))
    assert [s.number for s in of(SendPart, out)] == [4]
    saved = Manifest.from_json(of(PersistManifest, out)[-1].manifest_json)
    assert saved.parts == {2: '"e2"'}


def test_parts_are_hashed_before_their_urls_are_signed_and_urls_come_in_batches() -> None:
    config = EngineConfig(concurrency=4, url_batch=16, hash_concurrency=4)
    upload = Upload(new_manifest(size=40 * PART), config, random.Random(1))
    upload.handle(Start(0.0))
    out = upload.handle(SessionCreated(1.0, "S", "k", PART, 40, {}, 1_000))
    assert [h.number for h in of(HashPart, out)] == [1], "the first part is hashed alone: the first byte goes early"
    assert not of(RequestUrls, out), "no URL can be signed before its part's checksum is known"
    out = upload.handle(PartHashed(1.1, 1, "c1"))
    (first,) = of(RequestUrls, out)
    assert first.parts == ((1, "c1"),), "a free slot waits: ask for the first URL right away"
    assert [h.number for h in of(HashPart, out)] == [2, 3, 4, 5], "then hash_concurrency parts at a time"
    for number in (3, 2, 5, 4):
        out = feed(upload, PartHashed(1.2, number, f"c{number}"))  # hashing runs ahead, up to 4 + 16 parts
    assert sorted(upload.manifest.checksums) == list(range(1, 21))
    assert not of(RequestUrls, out), "one URL request at a time"
    out = feed(upload, UrlsReceived(1.5, {1: "https://s3/part1"}, 1_000))
    assert [(s.number, s.checksum_sha256) for s in of(SendPart, out)] == [(1, "c1")]
    (batch,) = of(RequestUrls, out)
    assert batch.part_numbers == tuple(range(2, 18)), "then a whole batch of hashed parts"
    out = feed(upload, UrlsReceived(2.0, urls(range(2, 18)), 1_000))
    assert [s.number for s in of(SendPart, out)] == [2, 3, 4]


def test_knowing_the_part_size_the_first_part_is_hashed_while_the_session_is_created() -> None:
    config = EngineConfig(concurrency=4, part_size=PART)
    upload = Upload(new_manifest(size=10 * PART), config, random.Random(1), source_readable=True)
    out = upload.handle(Start(0.0))
    (create,) = of(CreateSession, out)
    assert create.part_size == PART, "the server is asked for the part size the first part was cut with"
    assert [(h.number, h.offset, h.length) for h in of(HashPart, out)] == [(1, 0, PART)]
    assert not of(RequestUrls, upload.handle(PartHashed(0.05, 1, "c1"))), "no session to sign for yet"
    out = upload.handle(SessionCreated(0.1, "S", "k", PART, 10, {}, 1_000))
    assert of(RequestUrls, out)[0].parts == ((1, "c1"),), "part 1's URL is asked for the moment the session exists"


def test_an_early_hash_of_another_cut_is_dropped_and_part_one_hashed_again() -> None:
    config = EngineConfig(concurrency=1, part_size=PART)
    upload = Upload(new_manifest(size=10 * PART), config, random.Random(1), source_readable=True)
    upload.handle(Start(0.0))
    upload.handle(PartHashed(0.05, 1, "c1-of-8MiB"))
    out = upload.handle(SessionCreated(0.1, "S", "k", 2 * PART, 5, {}, 1_000))  # the server cut 16 MiB parts
    assert 1 not in upload.manifest.checksums
    assert [(h.number, h.length) for h in of(HashPart, out)] == [(1, 2 * PART)]
    assert not of(RequestUrls, out)


def test_an_early_hash_finishing_after_the_session_is_checked_against_the_plan() -> None:
    config = EngineConfig(concurrency=1, part_size=PART)
    upload = Upload(new_manifest(size=10 * PART), config, random.Random(1), source_readable=True)
    upload.handle(Start(0.0))
    upload.handle(SessionCreated(0.1, "S", "k", 2 * PART, 5, {}, 1_000))
    out = upload.handle(PartHashed(0.2, 1, "c1-of-8MiB"))
    assert 1 not in upload.manifest.checksums, "hashed over 8 MiB, but part 1 is 16 MiB"
    assert [(h.number, h.length) for h in of(HashPart, out)] == [(1, 2 * PART)]


def test_without_a_readable_source_nothing_is_hashed_before_the_copy_is_saved() -> None:
    upload = Upload(new_manifest(size=10 * PART, staged=False), EngineConfig(part_size=PART), random.Random(1))
    assert not of(HashPart, upload.handle(Start(0.0)))


def test_bad_digest_rehashes_the_part_and_signs_a_new_url() -> None:
    upload, _ = started(EngineConfig(concurrency=1, backoff=Backoff(base=10.0, cap=10.0)), size=PART)
    digest = Failure(FailureKind.BAD_DIGEST, "the bytes were damaged on the way", 400, "BadDigest")
    out = upload.handle(PartFailed(2.0, 1, digest))
    assert 1 not in upload.manifest.checksums
    assert upload.phase is Phase.UPLOADING
    assert [h.number for h in of(HashPart, out)] == [1], "the slice is read and hashed again"
    assert not of(RequestUrls, feed(upload, PartHashed(2.1, 1, "c1"))), "not before the backoff is over"
    assert of(RequestUrls, feed(upload, Tick(100.0)))[0].parts == ((1, "c1"),)


def test_unreadable_source_while_hashing_needs_the_user() -> None:
    upload = Upload(new_manifest(), EngineConfig(), random.Random(1))
    upload.handle(Start(0.0))
    upload.handle(created(1.0))
    upload.handle(PartFailed(1.5, 1, Failure(FailureKind.FATAL, "could not read the file in this browser")))
    assert upload.phase is Phase.FAILED
    assert upload.view().error == "could not read the file in this browser"


def test_completes_with_every_part_in_order_then_discards_the_local_copy() -> None:
    upload, _ = started(size=3 * PART)
    commands: list[Command] = []
    for n in (3, 1, 2):
        commands = feed(upload, PartSent(2.0 + n, n, f"e{n}"))
    (complete,) = of(CompleteUpload, commands)
    assert complete.parts == ((1, "e1"), (2, "e2"), (3, "e3"))
    assert upload.phase is Phase.COMPLETING
    out = feed(upload, UploadCompleted(9.0, "final"))
    assert upload.phase is Phase.COMPLETED
    assert of(DiscardLocal, out) == [DiscardLocal("L")]
    assert of(Publish, out)[-1].view.percent == 100.0


def test_empty_file_is_one_empty_part() -> None:
    upload = Upload(new_manifest(size=0), EngineConfig(), random.Random(1))
    feed(upload, Start(0.0))
    out = feed(upload, SessionCreated(1.0, "S", "k", PART, 1, urls([1]), 1_000))
    assert [(s.number, s.length) for s in of(SendPart, out)] == [(1, 0)]


def test_transient_failure_retries_after_jittered_backoff() -> None:
    config = EngineConfig(concurrency=1, backoff=Backoff(base=2.0, cap=60.0, max_attempts=5))
    upload, _ = started(config)
    out = feed(upload, PartFailed(5.0, 1, TRANSIENT))
    (wake,) = of(Wakeup, out)
    assert 5.0 <= wake.at <= 7.0  # first retry: within [0, base]
    assert not any(s.number == 1 for s in of(SendPart, out))
    # Another part uses the free slot meanwhile; once the retry is due, part 1 goes first again.
    assert [s.number for s in of(SendPart, out)] == [2]
    assert not of(SendPart, feed(upload, Tick(wake.at)))
    assert [s.number for s in of(SendPart, feed(upload, PartSent(wake.at + 0.5, 2, "e2")))] == [1]


def test_retry_budget_ends_in_action_needed_and_resume_starts_over_cleanly() -> None:
    config = EngineConfig(concurrency=1, backoff=Backoff(base=0.1, cap=0.1, max_attempts=3))
    upload, _ = started(config, size=PART)
    now = 2.0
    for _ in range(2):
        feed(upload, PartFailed(now, 1, TRANSIENT))
        now += 1.0
        assert [s.number for s in of(SendPart, feed(upload, Tick(now)))] == [1]
    feed(upload, PartFailed(now, 1, TRANSIENT))
    assert upload.phase is Phase.FAILED
    view = upload.view()
    assert view.label == "Action needed: connection reset"
    assert view.actions == ("retry", "cancel", "copy", "dismiss")
    out = feed(upload, Resume(now + 1))
    assert of(FetchState, out) == [FetchState("S")]
    assert upload.phase is Phase.RESUMING


def test_expired_url_is_refreshed_without_using_the_retry_budget() -> None:
    config = EngineConfig(concurrency=1, backoff=Backoff(max_attempts=1))
    upload, _ = started(config, size=PART)
    out = feed(upload, PartFailed(2.0, 1, EXPIRED))
    assert upload.phase is Phase.UPLOADING
    (request,) = of(RequestUrls, out)
    assert request.part_numbers[0] == 1
    out = feed(upload, UrlsReceived(3.0, {1: "https://s3/fresh1"}, 2_000))
    assert [(s.number, s.url) for s in of(SendPart, out)] == [(1, "https://s3/fresh1")]


def test_urls_close_to_expiry_are_not_used() -> None:
    upload = Upload(new_manifest(), EngineConfig(concurrency=1, url_refresh_margin=60), random.Random(1))
    feed(upload, Start(0.0))
    assert [s.number for s in of(SendPart, feed(upload, created(1.0, expires=1_000.0)))] == [1]
    out = feed(upload, PartSent(950.0, 1, "e1"))  # part 2's URL has 50 s left: too little to start a PUT
    assert not of(SendPart, out)
    assert of(RequestUrls, out)[0].part_numbers[0] == 2


def test_resume_trusts_only_whole_parts_that_s3_holds() -> None:
    manifest = new_manifest(
        session_id="S", object_key="k", part_size=PART, part_count=10, parts={1: "mine1", 2: "mine2"}
    )
    upload = Upload(manifest, EngineConfig(concurrency=2), random.Random(1))
    out = feed(upload, Start(0.0))
    assert of(FetchState, out) == [FetchState("S")]
    assert upload.view().label == "Resuming upload… 20% complete"
    remote = (
        RemotePart(1, "s3-1", PART),  # ours too: keep our ETag (the latest PUT we saw succeed)
        RemotePart(3, "s3-3", PART),  # finished in flight when the tab closed: no need to resend
        RemotePart(4, "s3-4", PART // 2),  # torn: must be resent
    )  # part 2 is missing on S3: resend it whatever the manifest says
    out = feed(upload, StateFetched(1.0, "uploading", remote))
    assert upload.manifest.parts == {1: "mine1", 3: "s3-3"}
    assert of(RequestUrls, out)[0].part_numbers == (2,)  # the lowest missing part first
    out = feed(upload, UrlsReceived(2.0, urls(range(2, 11)), 1_000))
    assert [s.number for s in of(SendPart, out)] == [2, 4]
    assert upload.view().resumed is True
    feed(upload, PartSent(3.0, 2, "e2"))
    assert upload.view().label == "Uploading"


def test_resume_of_an_upload_the_server_already_completed() -> None:
    manifest = new_manifest(session_id="S", object_key="k", part_size=PART, part_count=10)
    upload = Upload(manifest, EngineConfig(), random.Random(1))
    feed(upload, Start(0.0))
    out = feed(upload, StateFetched(1.0, "completed"))
    assert upload.phase is Phase.COMPLETED
    assert of(DiscardLocal, out)


def test_session_gone_on_resume_asks_the_user() -> None:
    manifest = new_manifest(session_id="S", object_key="k", part_size=PART, part_count=10)
    upload = Upload(manifest, EngineConfig(), random.Random(1))
    feed(upload, Start(0.0))
    gone = Failure(FailureKind.SESSION_GONE, "the upload session is gone: expired", 410)
    feed(upload, RequestFailed(1.0, ApiCall.STATE, gone))
    assert upload.phase is Phase.FAILED
    assert upload.view().actions == ("cancel", "copy", "dismiss")


def test_pause_cancels_in_flight_parts_and_resume_asks_s3_first() -> None:
    upload, _ = started()
    out = feed(upload, Pause(2.0))
    assert of(CancelParts, out) == [CancelParts((1, 2, 3, 4))]
    assert upload.phase is Phase.PAUSED
    assert upload.view().actions == ("resume", "cancel", "copy")
    # A PUT that finished just before the pause is still recorded.
    feed(upload, PartSent(2.1, 3, "e3"))
    assert upload.manifest.parts == {3: "e3"}
    assert not of(SendPart, feed(upload, Tick(3.0)))
    out = feed(upload, Resume(4.0))
    assert of(FetchState, out) == [FetchState("S")]


def test_cancel_aborts_the_multipart_upload_and_discards_local_state() -> None:
    upload, _ = started()
    out = feed(upload, Cancel(2.0))
    assert of(CancelParts, out)
    assert of(AbortUpload, out) == [AbortUpload("S")]
    assert of(DiscardLocal, out) == [DiscardLocal("L")]
    assert upload.phase is Phase.CANCELLED


def test_cancel_before_the_session_exists_aborts_it_when_it_arrives() -> None:
    upload = Upload(new_manifest(), EngineConfig(), random.Random(1))
    feed(upload, Start(0.0))
    feed(upload, Cancel(0.5))
    out = feed(upload, created(1.0))
    assert of(AbortUpload, out) == [AbortUpload("S")]
    assert not of(SendPart, out)


@pytest.mark.parametrize(
    ("failure", "actions"),
    [
        (Failure(FailureKind.SESSION_GONE, "the upload no longer exists on the storage", 404), ("cancel",)),
        (Failure(FailureKind.FATAL, "storage refused the upload: EntityTooLarge", 400), ("retry", "cancel")),
    ],
)
def test_non_retriable_part_failures_need_the_user(failure: Failure, actions: tuple[str, ...]) -> None:
    upload, _ = started()
    out = feed(upload, PartFailed(2.0, 1, failure))
    assert upload.phase is Phase.FAILED
    assert of(CancelParts, out) == [CancelParts((2, 3, 4))]
    view = upload.view()
    assert view.error == failure.message
    assert view.actions == (*actions, "copy", "dismiss")


def test_transient_service_failure_is_retried_after_backoff() -> None:
    upload = Upload(new_manifest(), EngineConfig(backoff=Backoff(base=1.0)), random.Random(1))
    feed(upload, Start(0.0))
    out = feed(upload, RequestFailed(1.0, ApiCall.CREATE, TRANSIENT))
    (wake,) = of(Wakeup, out)
    assert not of(CreateSession, feed(upload, Tick(wake.at - 0.01))) or wake.at - 0.01 < 1.0
    assert of(CreateSession, feed(upload, Tick(wake.at)))


def test_saving_creates_the_session_meanwhile_and_sends_only_once_staged() -> None:
    upload = Upload(new_manifest(staged=False), EngineConfig(), random.Random(1))
    out = feed(upload, Start(0.0))
    assert upload.phase is Phase.SAVING
    assert upload.view().label == "Saving to this browser"
    assert of(CreateSession, out)
    out = feed(upload, created(1.0))
    assert not of(SendPart, out)
    assert upload.phase is Phase.SAVING
    out = feed(upload, Staged(2.0))
    assert json.loads(of(PersistManifest, out)[0].manifest_json)["staged"] is True
    assert len(of(SendPart, out)) == 4


def test_lost_source_needs_the_user() -> None:
    upload = Upload(
        new_manifest(staged=False, session_id="S", object_key="k", part_size=PART, part_count=10),
        EngineConfig(),
        random.Random(1),
    )
    feed(upload, Start(0.0))
    feed(upload, SourceLost(1.0, "the browser's copy is incomplete; pick the file again"))
    assert upload.phase is Phase.FAILED
    assert "pick the file again" in upload.view().label


def test_impossible_plan_from_the_server_fails_clearly() -> None:
    upload = Upload(new_manifest(), EngineConfig(), random.Random(1))
    feed(upload, Start(0.0))
    feed(upload, SessionCreated(1.0, "S", "k", PART, 3, {}, 1_000))  # 10 parts are needed, not 3
    assert upload.phase is Phase.FAILED
    assert "impossible part plan" in (upload.view().error or "")


@pytest.mark.parametrize("seed", range(25))
def test_chaos_always_completes_with_every_part_and_never_overlaps(seed: int) -> None:
    """A simulated network that fails a third of PUTs and expires URLs: the upload still completes exactly."""
    rng = random.Random(seed)
    config = EngineConfig(
        concurrency=3,
        url_batch=5,
        url_refresh_margin=1.0,
        backoff=Backoff(base=0.1, cap=1.0, max_attempts=50),
    )
    upload = Upload(new_manifest(size=23 * PART + 5), config, random.Random(seed))
    now = 0.0
    queue: list[object] = [Start(now)]
    in_flight: set[int] = set()
    sent_ok: set[int] = set()
    timers: list[float] = []
    completed = False
    for _ in range(10_000):
        if not queue:
            if timers:
                now = max(now, min(timers))
                timers.remove(min(timers))
                queue.append(Tick(now))
            else:
                break
        now += rng.random() * 0.05
        event = queue.pop(rng.randrange(len(queue)))
        if isinstance(event, (PartSent, PartFailed)):
            in_flight.discard(event.number)
            if isinstance(event, PartSent):
                sent_ok.add(event.number)
        out = upload.handle(event)  # type: ignore[arg-type]
        for c in out:
            if isinstance(c, CreateSession):
                queue.append(SessionCreated(now, "S", "k", PART, 24, {}, now + 30))
            elif isinstance(c, HashPart):
                queue.append(PartHashed(now, c.number, f"c{c.number}"))
            elif isinstance(c, RequestUrls):
                assert c.part_numbers, "never ask for nothing"
                queue.append(UrlsReceived(now, urls(c.part_numbers), now + rng.choice([5, 30, 300])))
            elif isinstance(c, SendPart):
                assert c.number not in in_flight, "a part is never sent twice at once"
                assert c.checksum_sha256 == f"c{c.number}", "every PUT carries its part's checksum"
                in_flight.add(c.number)
                assert len(in_flight) <= config.concurrency
                roll = rng.random()
                if roll < 0.25:
                    queue.append(PartFailed(now, c.number, TRANSIENT))
                elif roll < 0.33:
                    queue.append(PartFailed(now, c.number, EXPIRED))
                else:
                    queue.append(PartSent(now, c.number, f"e{c.number}"))
            elif isinstance(c, CancelParts):
                in_flight.difference_update(c.numbers)
            elif isinstance(c, CompleteUpload):
                assert [n for n, _ in c.parts] == list(range(1, 25))
                assert all(etag == f"e{n}" for n, etag in c.parts)
                queue.append(UploadCompleted(now, "final"))
            elif isinstance(c, Wakeup):
                timers.append(c.at)
            elif isinstance(c, DiscardLocal):
                completed = True
        if completed:
            break
    assert completed and upload.phase is Phase.COMPLETED
    assert sent_ok == set(range(1, 25))


def test_urls_shorter_lived_than_the_refresh_margin_are_still_used() -> None:
    """A 10 s presign TTL with a 60 s margin must not starve the upload (the margin shrinks to a quarter of the TTL)."""
    upload = Upload(new_manifest(), EngineConfig(concurrency=2, url_refresh_margin=60), random.Random(1))
    feed(upload, Start(0.0))
    out = feed(upload, created(1.0, expires=11.0))
    assert [s.number for s in of(SendPart, out)] == [1, 2]
    # 8.6 s later only 1.4 s are left of the 10 s: below a quarter, so fresh URLs are asked for instead.
    out = feed(upload, PartSent(9.6, 1, "e1"))
    assert not of(SendPart, out)
    assert of(RequestUrls, out)


def test_long_wait_is_flagged_when_the_eta_passes_the_threshold() -> None:
    upload, _ = started(EngineConfig(concurrency=1, leave_threshold=45.0), size=100 * PART)
    feed(upload, PartSent(2.0, 1, "e1"))  # 8 MiB/s: 99 parts left is about 99 s
    assert upload.view().long_wait is True
    fast, _ = started(EngineConfig(concurrency=1, leave_threshold=45.0), size=3 * PART)
    feed(fast, PartSent(1.1, 1, "e1"))
    assert fast.view().long_wait is False


def test_a_stalled_part_is_aborted_and_retried() -> None:
    config = EngineConfig(concurrency=2, stall_factor=4.0, stall_min=5.0, stall_initial=60.0,
                          backoff=Backoff(base=0.01, cap=0.01))
    upload, out = started(config, size=10 * PART)
    assert {s.number for s in of(SendPart, out)} == {1, 2}
    # Before any part finished, the initial bound applies: a wakeup is asked for at 1 + 60 s.
    assert any(w.at == pytest.approx(61.0) for w in of(Wakeup, out))
    assert not of(CancelParts, feed(upload, Tick(30.0))), "not stalled yet"
    # Part 1 took 30 s (started at 1 s): a part of the same size may take 4x that, 120 s.
    out = feed(upload, PartSent(31.0, 1, "e1"))
    assert [s.number for s in of(SendPart, out)] == [3]
    assert upload.stall_bound(3) == pytest.approx(120.0)
    out = feed(upload, Tick(122.0))  # part 2 (started at 1 s) is past its bound; part 3 (started at 31 s) is not
    assert [n for c in of(CancelParts, out) for n in c.numbers] == [2]
    assert upload.phase is Phase.UPLOADING
    assert [s.number for s in of(SendPart, out)] == [4], "the freed slot is used while part 2 backs off"
    assert upload.stall_bound(3) == pytest.approx(240.0), "a stall widens the bound, in case the link slowed"
    out = feed(upload, PartSent(124.0, 3, "e3"))  # the next free slot goes to part 2 again, lowest first
    assert [s.number for s in of(SendPart, out)] == [2]


def test_the_stall_bound_does_not_drift_away_while_parts_hang() -> None:
    """A store restart leaves every PUT hanging: the bound must not grow as the measured rate falls to nothing."""
    config = EngineConfig(concurrency=4, stall_factor=4.0, stall_min=30.0, stall_initial=120.0,
                          backoff=Backoff(base=0.01, cap=0.01))
    upload, _ = started(config, size=40 * PART)
    clock = 1.0
    for number in range(1, 9):  # two seconds a part, four at a time
        clock += 0.5
        feed(upload, PartSent(clock + 1.5, number, f"e{number}"))
    hung_at = clock + 1.5
    bounds = [upload.stall_bound(9)]
    for later in (5.0, 15.0, 25.0):  # nothing finishes any more; the window rate decays to nothing
        feed(upload, Tick(hung_at + later))
        bounds.append(upload.stall_bound(9))
    assert bounds == [30.0] * 4, "the bound is the floor, and stays there"
    out = feed(upload, Tick(hung_at + 31.0))
    assert sorted(n for c in of(CancelParts, out) for n in c.numbers) == [9, 10, 11, 12], "all hung PUTs go"


def test_a_timer_that_rings_early_is_asked_for_again() -> None:
    """The timer and the clock may disagree by a millisecond; an early tick must not leave the upload without a
    timer (a part hung after a store restart was then never aborted)."""
    config = EngineConfig(concurrency=1, stall_initial=60.0, backoff=Backoff(base=0.01, cap=0.01))
    upload, out = started(config, size=2 * PART)
    (wake,) = of(Wakeup, out)
    assert wake.at == pytest.approx(61.0)
    out = feed(upload, Tick(wake.at - 0.001))
    assert not of(CancelParts, out), "not due yet"
    assert [w.at for w in of(Wakeup, out)] == [pytest.approx(61.0)], "the same wakeup is asked for again"
    out = feed(upload, Tick(wake.at))
    assert [n for c in of(CancelParts, out) for n in c.numbers] == [1]


def test_offline_waits_for_the_network_then_asks_s3_and_continues() -> None:
    upload, _ = started()
    out = feed(upload, Connectivity(2.0, online=False))
    assert of(CancelParts, out) == [CancelParts((1, 2, 3, 4))]
    assert upload.phase is Phase.OFFLINE
    view = upload.view()
    assert view.label == "Waiting for network"
    assert not upload.is_idle, "it continues by itself, no click needed"
    assert not of(SendPart, feed(upload, Tick(50.0)))
    out = feed(upload, Connectivity(60.0, online=True))
    assert of(FetchState, out) == [FetchState("S")]
    out = feed(upload, StateFetched(61.0, "uploading", (RemotePart(1, "s3-1", PART),)))
    assert upload.manifest.parts == {1: "s3-1"}
    assert upload.phase is Phase.UPLOADING
    assert [s.number for s in of(SendPart, out)] == [2, 3, 4, 5]


def test_pause_while_offline_stays_paused_when_the_network_returns() -> None:
    upload, _ = started()
    feed(upload, Connectivity(2.0, online=False))
    feed(upload, Pause(3.0))
    feed(upload, Connectivity(4.0, online=True))
    assert upload.phase is Phase.PAUSED


def test_view_words_and_banner_once_saved_and_slow() -> None:
    upload, _ = started(EngineConfig(concurrency=1, leave_threshold=45.0), size=100 * PART)
    feed(upload, PartSent(2.0, 1, "e1"))
    view = upload.view()
    assert view.banner and view.banner.startswith("Saved. You can keep working")
    assert view.eta_text.startswith("about ")
    assert view.bytes_text == "8.4 MB of 839 MB"
    assert view.speed_text.endswith("MB/s")
    unsaved = Upload(new_manifest(staged=False), EngineConfig(), random.Random(1))
    unsaved.handle(Start(0.0))
    assert unsaved.view().banner is None, "no banner before the file is safe in the browser"
    queued = Upload(new_manifest(), EngineConfig(), random.Random(1))
    assert queued.view().label == "Queued"
    # Once told, the banner stays while the upload goes on, even when the estimate drops below the threshold.
    for n in range(2, 99):
        feed(upload, PartSent(2.0 + n * 0.001, n, f"e{n}"))
    assert upload.view().long_wait is False
    assert upload.view().banner is not None
    feed(upload, PartSent(3.0, 99, "e99"))
    feed(upload, PartSent(3.1, 100, "e100"))
    feed(upload, UploadCompleted(3.2, "final"))
    assert upload.view().banner is None


def test_adaptive_concurrency_halves_when_many_puts_fail() -> None:
    backoff = Backoff(base=0.01, cap=0.01, max_attempts=50)
    config = EngineConfig(concurrency=4, adaptive_concurrency=True, backoff=backoff)
    upload, out = started(config, size=40 * PART)
    assert upload.concurrency == 4 and len(of(SendPart, out)) == 4
    now = 2.0
    for n in (1, 2, 3, 4):  # every PUT of the epoch fails: back off (AIMD), do not wait for the epoch's end
        out = feed(upload, PartFailed(now, n, TRANSIENT))
        now += 0.1
    assert upload.concurrency == 2
    assert upload.view().concurrency == 2
    # PUTs already in flight finish; new ones start only below the lowered level.
    flying = sorted(upload.in_flight)
    assert len(flying) == 3
    out = feed(upload, PartSent(now + 1, flying[0], "e"))
    assert not of(SendPart, out), "two still in flight: that is the level now"
    out = feed(upload, PartSent(now + 2, flying[1], "e"))
    assert len(of(SendPart, out)) == 1


def test_a_readable_source_uploads_while_its_copy_is_saved() -> None:
    upload = Upload(new_manifest(staged=False), EngineConfig(), random.Random(1), source_readable=True)
    upload.handle(Start(0.0))
    assert upload.phase is Phase.CREATING
    out = feed(upload, created(1.0))
    assert len(of(SendPart, out)) == 2, "no waiting for the whole copy, but the copy is not starved either"
    assert upload.view().banner is None, "not 'saved' until the copy is complete"
    out = feed(upload, Staged(2.0))
    assert json.loads(of(PersistManifest, out)[0].manifest_json)["staged"] is True
    assert upload.phase is Phase.UPLOADING
    assert len(upload.in_flight) == 4, "all the PUT slots once the copy is complete"


def test_while_the_copy_is_made_one_part_is_hashed_at_a_time_and_few_ahead() -> None:
    upload = Upload(new_manifest(staged=False), EngineConfig(), random.Random(1), source_readable=True)
    upload.handle(Start(0.0))
    upload.handle(PartHashed(0.5, 1, "c1"))
    out = upload.handle(created(1.0))
    hashes = of(HashPart, out)
    assert len(hashes) == 1 and len(upload.scheduler.hashing) == 1, "one at a time"
    for _ in range(8):
        out = upload.handle(PartHashed(1.5, of(HashPart, out)[0].number, "c")) if of(HashPart, out) else []
    ahead = len(upload.manifest.checksums) - len(upload.in_flight)
    assert ahead <= upload.concurrency + 1, "hashed only just ahead of the PUTs (not a whole URL batch)"
    out = upload.handle(Staged(2.0))
    assert len(upload.scheduler.hashing) > 1, "all the hashing slots once the copy is complete"


def test_got_it_hides_the_banner_for_good_and_the_offer_follows_the_wait() -> None:
    upload, _ = started(EngineConfig(concurrency=1, leave_threshold=45.0), size=100 * PART)
    feed(upload, PartSent(2.0, 1, "e1"))
    view = upload.view()
    assert view.banner is not None and view.offer_notification and view.long_wait
    out = feed(upload, HideLeaveHint(2.5))
    assert of(Publish, out)[-1].view.banner is None, "every page hears that the banner is gone"
    feed(upload, PartSent(3.0, 2, "e2"))
    assert upload.view().banner is None
    feed(upload, Pause(4.0))
    assert upload.view().offer_notification is False, "nothing to wait for while paused"


def test_the_card_links_to_the_status_page_once_the_server_knows_the_upload() -> None:
    upload = Upload(new_manifest(), EngineConfig(), random.Random(1))
    assert upload.view().link is None and "copy" not in upload.view().actions
    feed(upload, Start(0.0))
    feed(upload, created(1.0))
    assert upload.view().link == "/files/S"
    assert "copy" in upload.view().actions


# ---- a wrong device clock ---------------------------------------------------------------------------------------

HOURS = 3 * 3600.0


@pytest.mark.parametrize("skew", [HOURS, -HOURS], ids=["clock-3h-ahead", "clock-3h-behind"])
def test_url_lifetimes_are_judged_on_the_servers_clock(skew: float) -> None:
    """The device's clock is 3 h off: URLs the server signed for 900 s are used, and judged stale after ~900 s."""
    upload = Upload(new_manifest(), EngineConfig(concurrency=1, url_refresh_margin=60), random.Random(1))
    local = 100_000.0 + skew  # what this device believes; the server says 100_000
    feed(upload, Start(local))
    session = SessionCreated(local, "S", "k", PART, 10, urls(range(1, 11)), 100_900.0, server_now=100_000.0)
    assert [s.number for s in of(SendPart, feed(upload, session))] == [1]
    # 850 s later, part 2's URL has 50 s left on the server's clock: too little to start a PUT.
    out = feed(upload, PartSent(local + 850, 1, "e1"))
    assert not of(SendPart, out) and of(RequestUrls, out)
    out = feed(upload, UrlsReceived(local + 851, urls(range(2, 11)), 100_851 + 900.0, server_now=100_851.0))
    assert [s.number for s in of(SendPart, out)] == [2]


def test_a_refresh_that_yields_no_usable_url_backs_off_and_ends_in_action_needed() -> None:
    """URLs that arrive already expired are a failed refresh: never a tight loop of requests."""
    config = EngineConfig(concurrency=1, backoff=Backoff(base=1.0, cap=4.0, max_attempts=4))
    upload = Upload(new_manifest(), config, random.Random(1))
    feed(upload, Start(0.0))
    feed(upload, SessionCreated(1.0, "S", "k", PART, 10, {}, 0.0))
    now = 1.0
    requests = 0
    for _ in range(20):
        out = feed(upload, UrlsReceived(now, urls(range(1, 11)), 100.0, server_now=100.0))  # lifetime 0
        assert not of(SendPart, out)
        assert not of(RequestUrls, out), "no new request before the backoff is over"
        if upload.phase is Phase.FAILED:
            break
        (wakeup,) = of(Wakeup, out)
        assert wakeup.at > now
        now = wakeup.at
        out = feed(upload, Tick(now))
        assert len(of(RequestUrls, out)) == 1
        requests += 1
    assert upload.phase is Phase.FAILED
    assert requests == 3
    view = upload.view()
    assert view.label == "Action needed: " + URLS_EXPIRE_TOO_SOON
    assert view.actions[:2] == ("retry", "cancel")


def test_a_storage_that_calls_every_fresh_url_expired_is_not_a_loop() -> None:
    config = EngineConfig(concurrency=1, backoff=Backoff(base=1.0, cap=4.0, max_attempts=4))
    upload, _ = started(config, size=PART)
    now = 2.0
    for streak in range(1, 5):  # the first expiry, then three more in a row (the budget is 4)
        out = feed(upload, PartFailed(now, 1, EXPIRED))
        if streak == 1:
            assert of(RequestUrls, out), "the first expiry is refreshed at once"
        else:
            assert not of(RequestUrls, out), "from the second expiry in a row the part waits"
            now = max(w.at for w in of(Wakeup, out))
            out = feed(upload, Tick(now))
            assert of(RequestUrls, out)
        out = feed(upload, UrlsReceived(now + 0.1, {1: f"https://s3/fresh{streak}"}, 2_000))
        assert [s.url for s in of(SendPart, out)] == [f"https://s3/fresh{streak}"]
        now += 1
    feed(upload, PartFailed(now, 1, EXPIRED))
    assert upload.phase is Phase.FAILED
    assert upload.error is not None and "clocks" in upload.error.message
    assert upload.scheduler.attempts == {}, "expiries never used the retry budget"


def test_a_part_sent_ends_its_expiry_streak() -> None:
    config = EngineConfig(concurrency=1, backoff=Backoff(base=1.0, max_attempts=3))
    upload, _ = started(config, size=2 * PART)
    feed(upload, PartFailed(2.0, 1, EXPIRED))
    feed(upload, UrlsReceived(2.1, {1: "https://s3/fresh"}, 2_000))
    assert upload.scheduler.expired == {1: 1}
    feed(upload, PartSent(3.0, 1, "e1"))
    assert upload.scheduler.expired == {}


# ---- answers that are not the storage's -------------------------------------------------------------------------

PORTAL = Failure(FailureKind.NOT_STORAGE, "a web page answered instead of the storage", 200)


def test_a_portal_answer_is_retried_and_never_touches_the_manifest() -> None:
    upload, _ = started(EngineConfig(concurrency=2, not_storage_limit=4), size=4 * PART)
    out = feed(upload, PartFailed(2.0, 1, PORTAL))
    assert not of(PersistManifest, out), "nothing about the manifest changed"
    assert upload.manifest.parts == {} and upload.phase is Phase.UPLOADING
    assert upload.scheduler.retry_at[1] > 2.0, "retried after a backoff, like a lost connection"
    out = feed(upload, PartSent(3.0, 2, '"e2"'))
    assert upload.manifest.parts == {2: '"e2"'}


def test_a_run_of_portal_answers_ends_in_action_needed_and_retry_starts_afresh() -> None:
    upload, _ = started(EngineConfig(concurrency=4, not_storage_limit=4), size=8 * PART)
    for number in (1, 2, 3):
        feed(upload, PartFailed(2.0, number, PORTAL))
        assert upload.phase is Phase.UPLOADING
    feed(upload, PartSent(2.5, 4, '"e4"'))  # a real storage answer in between breaks the run
    now = 3.0
    for _ in range(4):  # then four in a row, whichever parts are in flight
        assert upload.phase is Phase.UPLOADING
        if not upload.scheduler.in_flight:
            now = max(upload.scheduler.retry_at.values())
            feed(upload, Tick(now))
        number = min(upload.scheduler.in_flight)
        feed(upload, PartFailed(now, number, PORTAL))
    assert upload.phase is Phase.FAILED
    view = upload.view()
    assert view.label == "Action needed: the network is answering instead of the storage (captive portal or proxy?)"
    assert view.actions[:2] == ("retry", "cancel")
    assert upload.manifest.parts == {4: '"e4"'}
    out = feed(upload, Resume(now + 2))
    assert of(FetchState, out) and upload.phase is Phase.RESUMING


# ---- what closing the tab does, told truthfully -------------------------------------------------------------------


def slow_upload(grace: float | None, parts: int, seconds_per_part: float) -> Upload:
    """An upload told to leave (ETA past the threshold), with ``parts`` of 8 MiB sent at a steady pace."""
    upload, _ = started(EngineConfig(concurrency=1, leave_threshold=45.0), size=parts * PART)
    upload.keeps_running_for = grace
    for n in range(1, 6):
        feed(upload, PartSent(1.0 + n * seconds_per_part, n, f"e{n}"))
    return upload


def test_without_extended_lifetime_closing_the_tab_pauses_until_the_next_visit() -> None:
    upload = slow_upload(None, parts=100, seconds_per_part=2.0)
    assert upload.view().banner == LEAVE_BANNER


def test_with_extended_lifetime_and_an_eta_inside_the_grace_the_upload_will_finish() -> None:
    upload = slow_upload(300.0, parts=40, seconds_per_part=2.0)  # 35 parts left at 2 s each: about 70 s
    view = upload.view()
    assert view.eta_seconds is not None and 45 < view.eta_seconds < 120
    assert view.banner == LEAVE_BANNER_FINISHES


def test_with_extended_lifetime_and_a_longer_eta_the_rest_waits_for_the_next_visit() -> None:
    upload = slow_upload(300.0, parts=400, seconds_per_part=2.0)  # about 13 minutes left
    assert upload.view().banner == LEAVE_BANNER_FOR_A_WHILE
    assert "finish the rest the next time you open Smartcat" in LEAVE_BANNER_FOR_A_WHILE
