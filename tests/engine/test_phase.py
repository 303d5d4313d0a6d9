"""The transition table: every phase change and every event's meaning per phase is in one place, and enforced."""

from __future__ import annotations

import random

import pytest

from browser_py.engine.config import EngineConfig
from browser_py.engine.events import (
    ApiCall,
    Cancel,
    Connectivity,
    Event,
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
from browser_py.engine.phase import (
    EVENTS,
    TRANSITIONS,
    IllegalEvent,
    IllegalTransition,
    Phase,
    check_transition,
    disposition,
)
from browser_py.engine.upload import Upload
from wire.plan import MiB

PART = 8 * MiB
#: What the server may say of a completed object's malware scan (None: not scanned).
SCANS = [None, "pending", "pending", "clean", "infected", "too_large", "unscanned"]


def test_every_event_has_a_rule_and_no_phase_is_both_handled_and_stale() -> None:
    assert set(EVENTS) == set(Event.__args__)  # type: ignore[attr-defined]
    for rule in EVENTS.values():
        assert not rule.handled & rule.stale
    assert set(TRANSITIONS) == set(Phase)
    assert not TRANSITIONS[Phase.COMPLETED] and not TRANSITIONS[Phase.CANCELLED], "finished is final"
    assert not TRANSITIONS[Phase.BLOCKED], "blocked is final"


def test_an_event_that_cannot_happen_in_a_phase_raises() -> None:
    upload = Upload(Manifest("L", "f", 3 * PART, "x", "fp", staged=True), EngineConfig(), random.Random(1))
    upload.handle(Start(0.0))
    with pytest.raises(IllegalEvent, match="Start cannot happen while an upload is creating"):
        upload.handle(Start(1.0))
    with pytest.raises(IllegalEvent):
        upload.handle(Resume(1.0))


def test_a_late_answer_is_stale_not_illegal() -> None:
    assert disposition(PartSent(0.0, 1, "e"), Phase.CANCELLED) is False
    assert disposition(UrlsReceived(0.0, {}, 0.0), Phase.PAUSED) is False
    assert disposition(Pause(0.0), Phase.UPLOADING) is True
    with pytest.raises(IllegalEvent):
        disposition(Cancel(0.0), Phase.COMPLETED)


def test_a_transition_outside_the_table_raises() -> None:
    check_transition(Phase.UPLOADING, Phase.COMPLETING)
    with pytest.raises(IllegalTransition, match="completed -> uploading"):
        check_transition(Phase.COMPLETED, Phase.UPLOADING)
    with pytest.raises(IllegalTransition):
        check_transition(Phase.QUEUED, Phase.UPLOADING)


def _random_event(upload: Upload, rng: random.Random, now: float) -> Event:
    """Any event that the outside world could produce now: answers to what is pending, user actions, the network."""
    count = upload.manifest.part_count or 3
    number = rng.randint(1, count)
    fail = Failure(rng.choice(list(FailureKind)), "boom", 500)
    candidates: list[Event] = [
        Start(now),
        Staged(now),
        SessionCreated(now, "S", "k", PART, 3, {1: "u1", 2: "u2"}, now + 900),
        StateFetched(
            now, rng.choice(["uploading", "completed", "aborted"]), (RemotePart(1, "e1", PART),), rng.choice(SCANS)
        ),
        UrlsReceived(now, {n: f"u{n}" for n in range(1, 4)}, now + 900),
        PartHashed(now, number, f"c{number}"),
        PartSent(now, number, f"e{number}"),
        PartFailed(now, number, fail),
        RequestFailed(now, rng.choice(list(ApiCall)), fail),
        UploadCompleted(now, "etag", rng.choice(SCANS), "Eicar"),
        Tick(now),
        Connectivity(now, rng.random() < 0.5),
        Pause(now),
        Resume(now),
        Cancel(now) if rng.random() < 0.05 else Tick(now),
        SourceLost(now, "gone") if rng.random() < 0.05 else Tick(now),
    ]
    # Answers come only to calls that were made: nothing about a session before there is one, no second session.
    session_answers = (StateFetched, UrlsReceived, PartSent, UploadCompleted)
    has_session = upload.manifest.session_id is not None
    legal = [
        e
        for e in candidates
        if _legal(e, upload.phase)
        and not (isinstance(e, session_answers) and not has_session)
        and not (isinstance(e, SessionCreated) and has_session)
        and not (isinstance(e, RequestFailed) and e.call is not ApiCall.CREATE and not has_session)
    ]
    return rng.choice(legal)


def _legal(event: Event, phase: Phase) -> bool:
    try:
        disposition(event, phase)
    except IllegalEvent:
        return False
    return True


@pytest.mark.parametrize("seed", range(40))
def test_random_walks_of_legal_events_never_break_the_table(seed: int) -> None:
    """Whatever order legal events come in, the machine only takes transitions the table allows."""
    rng = random.Random(seed)
    manifest = Manifest("L", "f", 3 * PART - 1, "x", "fp", staged=rng.random() < 0.7)
    upload = Upload(manifest, EngineConfig(concurrency=2, part_size=PART), random.Random(seed), source_readable=True)
    now = 0.0
    seen = {upload.phase}
    for _ in range(300):
        now += rng.random()
        upload.handle(_random_event(upload, rng, now))
        seen.add(upload.phase)
        if upload.phase in (Phase.COMPLETED, Phase.CANCELLED, Phase.BLOCKED):
            break
    assert len(seen) > 1
