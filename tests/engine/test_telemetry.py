"""The telemetry accumulator: what it notes from events and commands, how batches are taken, bounded, put back."""

from __future__ import annotations

import json

from browser_py.engine.commands import CancelParts, SendPart
from browser_py.engine.events import (
    ApiCall,
    Cancel,
    Connectivity,
    PartFailed,
    PartSent,
    Pause,
    RequestFailed,
    Resume,
    SessionCreated,
    Tick,
    UploadCompleted,
)
from browser_py.engine.failures import Failure, FailureKind
from browser_py.engine.telemetry import Telemetry
from wire.telemetry import MAX_EVENTS, TelemetryEvent

MiB = 1024**2
T0 = 1_700_000_000.0


def _send(number: int, length: int = 8 * MiB) -> SendPart:
    return SendPart(number, (number - 1) * length, length, f"https://s3/{number}", "c2hh")


def _kinds(events: tuple[TelemetryEvent, ...]) -> list[tuple[str, str]]:
    return [(e.kind, e.detail) for e in events]


def _started(telemetry: Telemetry) -> None:
    telemetry.observe("a", "", SessionCreated(T0, "sess-1", "k", 8 * MiB, 2), [], "uploading")


def test_retries_stalls_and_throughput_of_one_upload() -> None:
    telemetry = Telemetry()
    _started(telemetry)
    telemetry.observe("a", "sess-1", Tick(T0), [_send(1), _send(2)], "uploading")
    transient = Failure(FailureKind.TRANSIENT, "network error")
    telemetry.observe("a", "sess-1", PartFailed(T0 + 1, 1, transient), [_send(1)], "uploading")
    telemetry.observe("a", "sess-1", Tick(T0 + 2), [CancelParts((2,))], "uploading")  # a stall
    telemetry.observe("a", "sess-1", RequestFailed(T0 + 2, ApiCall.URLS, transient), [_send(2)], "uploading")
    telemetry.observe("a", "sess-1", PartSent(T0 + 3, 1, "e1"), [], "uploading")
    telemetry.observe("a", "sess-1", PartSent(T0 + 4, 2, "e2"), [], "completing")
    assert not telemetry.due(T0 + 4)
    telemetry.observe("a", "sess-1", UploadCompleted(T0 + 5, "etag"), [], "completed")
    assert telemetry.due(T0 + 5)

    batch = telemetry.take(T0 + 5)
    assert batch is not None
    [upload] = batch.uploads
    assert upload.session_id == "sess-1"
    assert _kinds(upload.events) == [
        ("retry", "transient"),
        ("stall", ""),
        ("retry", "transient"),
        ("completed", ""),
    ]
    assert upload.events[1].value == 1
    # 16 MiB confirmed over the 4 s with parts in flight (T0 .. T0+4).
    assert upload.events[-1].value == round(16 * MiB / 4, 1)
    assert telemetry.take(T0 + 6) is None  # taken, and the finished upload is forgotten


def test_offline_period_and_its_resume_pause_and_user_resume() -> None:
    telemetry = Telemetry()
    _started(telemetry)
    telemetry.observe("a", "sess-1", Tick(T0), [_send(1)], "uploading")
    telemetry.observe("a", "sess-1", Connectivity(T0 + 10, online=False), [CancelParts((1,))], "offline")
    telemetry.observe("a", "sess-1", Connectivity(T0 + 40, online=True), [], "resuming")
    telemetry.observe("a", "sess-1", Pause(T0 + 50), [], "paused")
    telemetry.observe("a", "sess-1", Resume(T0 + 60), [], "resuming")
    telemetry.observe("a", "sess-1", Cancel(T0 + 70), [], "cancelled")
    batch = telemetry.take(T0 + 70)
    assert batch is not None
    events = batch.uploads[0].events
    assert _kinds(events) == [
        ("offline", ""),
        ("resumed", "network"),
        ("paused", ""),
        ("resumed", "user"),
        ("cancelled", ""),
    ]
    assert events[0].value == 30
    assert [e.at for e in events] == [T0 + 40, T0 + 40, T0 + 50, T0 + 60, T0 + 70]


def test_a_recovered_upload_reports_its_cause() -> None:
    telemetry = Telemetry()
    telemetry.booted("snapshot", 1.23456)
    telemetry.resumed("a", "sess-1", T0, "tab_closed")
    telemetry.observe("a", "sess-1", UploadCompleted(T0 + 5, "etag"), [], "completed")
    batch = telemetry.take(T0 + 5)
    assert batch is not None
    assert batch.boot is not None and (batch.boot.mode, batch.boot.seconds) == ("snapshot", 1.235)
    assert _kinds(batch.uploads[0].events) == [("resumed", "tab_closed"), ("completed", "")]


def test_failure_is_noted_once_with_its_class() -> None:
    telemetry = Telemetry()
    _started(telemetry)
    fatal = Failure(FailureKind.SESSION_GONE, "gone", 404)
    telemetry.observe("a", "sess-1", RequestFailed(T0 + 1, ApiCall.STATE, fatal), [], "failed")
    telemetry.observe("a", "sess-1", Tick(T0 + 2), [], "failed")
    batch = telemetry.take(T0 + 2)
    assert batch is not None
    assert _kinds(batch.uploads[0].events) == [("retry", "session_gone"), ("failed", "session_gone")]


def test_flushed_on_a_timer_and_only_uploads_with_a_session() -> None:
    telemetry = Telemetry(flush_seconds=300)
    failure = Failure(FailureKind.TRANSIENT, "x")
    telemetry.observe("before-session", "", RequestFailed(T0, ApiCall.CREATE, failure), [], "creating")
    assert telemetry.take(T0) is None  # nothing namable yet
    _started(telemetry)
    telemetry.observe("a", "sess-1", PartFailed(T0 + 1, 1, failure), [], "uploading")
    assert not telemetry.due(T0 + 299)
    assert telemetry.due(T0 + 300)
    batch = telemetry.take(T0 + 300)
    assert batch is not None and [u.session_id for u in batch.uploads] == ["sess-1"]
    assert not telemetry.due(T0 + 10_000)


def test_events_are_bounded_and_what_is_left_out_is_counted() -> None:
    telemetry = Telemetry()
    _started(telemetry)
    failure = Failure(FailureKind.TRANSIENT, "x")
    for n in range(MAX_EVENTS + 50):
        telemetry.observe("a", "sess-1", PartFailed(T0 + n, 1, failure), [], "uploading")
    batch = telemetry.take(T0 + 500)
    assert batch is not None
    events = batch.uploads[0].events
    assert len(events) == MAX_EVENTS
    assert events[-1].kind == "dropped" and events[-1].value == 51


def test_a_batch_that_could_not_be_sent_is_put_back_in_front() -> None:
    telemetry = Telemetry()
    telemetry.booted("plain", 3.0)
    _started(telemetry)
    failure = Failure(FailureKind.BAD_DIGEST, "x")
    telemetry.observe("a", "sess-1", PartFailed(T0 + 1, 1, failure), [], "uploading")
    first = telemetry.take(T0 + 2)
    assert first is not None
    telemetry.observe("a", "sess-1", PartFailed(T0 + 3, 2, failure), [], "uploading")
    telemetry.put_back(first)
    again = telemetry.take(T0 + 4)
    assert again is not None and again.boot == first.boot
    assert [e.at for e in again.uploads[0].events] == [T0 + 1, T0 + 3]


def test_the_batch_is_plain_json_without_names() -> None:
    telemetry = Telemetry()
    telemetry.observe(
        "local-id-secret", "", SessionCreated(T0, "sess-1", "uploads/owner/sess-1", 8 * MiB, 1), [], "uploading"
    )
    telemetry.observe("local-id-secret", "sess-1", Pause(T0 + 1), [], "paused")
    batch = telemetry.take(T0 + 2)
    assert batch is not None
    text = json.dumps(batch.to_json())
    assert "local-id-secret" not in text and "owner" not in text
    assert json.loads(text) == {
        "uploads": [{"session_id": "sess-1", "events": [{"at": T0 + 1, "kind": "paused", "detail": "", "value": 0.0}]}],
        "sent_at": T0 + 2,
    }
