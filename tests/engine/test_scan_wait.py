"""An uploaded file the server holds in quarantine for its malware scan: the card says "Checking for viruses…" with
no link, the engine polls the verdict with growing delays (never giving up, never "Action needed"), and only a clean
verdict is "Completed" and toasted; a blocked file says why, with no link."""

from __future__ import annotations

import pytest

from browser_py.engine.commands import Command, DiscardLocal, FetchState, Publish, Wakeup
from browser_py.engine.config import EngineConfig
from browser_py.engine.events import ApiCall, Cancel, RequestFailed, StateFetched, Tick, UploadCompleted
from browser_py.engine.failures import Failure, FailureKind
from browser_py.engine.phase import IDLE, Phase
from browser_py.engine.upload import Upload
from browser_py.engine.uploadset import Say, Toast, UploadSet
from tests.engine.test_upload import PART, PartSent, feed, of, started
from wire.api import CompletedUpload, WireError

SIGNATURE = "Eicar-Test-Signature"


def uploaded(scan: str | None, signature: str | None = None) -> tuple[Upload, list[Command]]:
    """An upload whose parts are all sent, and the complete answer carrying ``scan``."""
    upload, _ = started(size=2 * PART)
    feed(upload, PartSent(2.0, 1, "e1"))
    feed(upload, PartSent(3.0, 2, "e2"))
    assert upload.phase is Phase.COMPLETING
    return upload, feed(upload, UploadCompleted(4.0, "final", scan, signature))


def poll(upload: Upload, out: list[Command]) -> tuple[float, list[Command]]:
    """Ring the timer the last commands asked for; return its time and what the tick asked for."""
    (wakeup,) = of(Wakeup, out)
    return wakeup.at, feed(upload, Tick(wakeup.at))


def test_a_file_in_quarantine_checks_for_viruses_without_a_link_then_completes_when_clean() -> None:
    upload, out = uploaded("pending")
    assert upload.phase is Phase.SCANNING and upload.phase not in IDLE, "the driver keeps running to poll"
    view = of(Publish, out)[-1].view
    assert (view.label, view.percent, view.link) == ("Checking for viruses…", 100.0, None)
    assert view.actions == () and not view.finished
    assert of(DiscardLocal, out) == [DiscardLocal("L")], "the bytes are on S3: the browser's copy goes now"

    at, asked = poll(upload, out)
    assert 4.5 <= at <= 5.0
    assert of(FetchState, asked) == [FetchState("S", "")]
    out = feed(upload, StateFetched(at + 0.1, "completed", (), "pending"))
    assert upload.phase is Phase.SCANNING and not of(Publish, out), "the same card: nothing to publish"
    at, asked = poll(upload, out)
    out = feed(upload, StateFetched(at + 0.1, "completed", (), "clean"))
    assert upload.phase is Phase.COMPLETED
    view = of(Publish, out)[-1].view
    assert (view.label, view.link) == ("Completed", "/files/S")
    assert "copy" in view.actions and view.finished
    assert not of(DiscardLocal, out), "discarded once"


@pytest.mark.parametrize(
    ("scan", "label"),
    [("infected", f"Blocked: malware found ({SIGNATURE})"), ("too_large", "Blocked: too large to check for viruses")],
)
def test_a_blocked_file_says_why_with_no_link(scan: str, label: str) -> None:
    upload, out = uploaded("pending")
    at, _ = poll(upload, out)
    out = feed(upload, StateFetched(at, "completed", (), scan, SIGNATURE if scan == "infected" else None))
    assert upload.phase is Phase.BLOCKED and upload.is_idle
    view = of(Publish, out)[-1].view
    assert (view.label, view.link, view.actions, view.finished) == (label, None, ("dismiss",), True)
    assert not of(Wakeup, out), "nothing more to ask"


def test_a_verdict_in_the_complete_answer_needs_no_poll() -> None:
    upload, out = uploaded("infected", SIGNATURE)
    assert upload.phase is Phase.BLOCKED and not of(Wakeup, out)
    upload, out = uploaded("unscanned")
    assert upload.phase is Phase.COMPLETED
    assert of(Publish, out)[-1].view.label == "Uploaded in full — not checked for viruses (too large to scan)"
    upload, out = uploaded(None)
    assert upload.phase is Phase.COMPLETED and of(Publish, out)[-1].view.label == "Completed"


def test_polls_back_off_to_a_cap_and_failures_never_end_in_action_needed() -> None:
    upload, out = uploaded("pending")
    waits: list[float] = []
    now = 4.0
    failures = [
        Failure(FailureKind.TRANSIENT, "connection reset"),
        Failure(FailureKind.FATAL, "the upload service answered 500", 500),
        Failure(FailureKind.SESSION_GONE, "not found", 404),
    ]
    for attempt in range(12):
        at, asked = poll(upload, out)
        waits.append(at - now)
        now = at
        assert of(FetchState, asked)
        answer = failures[attempt % 3] if attempt % 2 else None
        if answer is None:
            out = feed(upload, StateFetched(now, "completed", (), "pending"))
        else:
            out = feed(upload, RequestFailed(now, ApiCall.STATE, answer))
        assert upload.phase is Phase.SCANNING
    assert waits[0] <= 1.0 and waits[3] > waits[0], "growing"
    assert max(waits) <= 20.0 and min(waits[-4:]) >= 10.0, "capped, jittered within half the cap"
    assert feed(upload, Cancel(now)) == [] and upload.phase is Phase.SCANNING, "a late click changes nothing"


def test_the_set_toasts_only_a_released_file_and_says_a_blocked_one_as_a_notice() -> None:
    uploads = UploadSet(EngineConfig())
    upload, out = uploaded("pending")
    uploads.uploads["L"] = upload
    assert not [d for d in uploads.published(of(Publish, out)[-1].view, 4.0) if isinstance(d, Toast)]
    assert uploads.summary().active == 1, "still going on: the header counts it"
    at, _ = poll(upload, out)
    out = feed(upload, StateFetched(at, "completed", (), "infected", SIGNATURE))
    said = uploads.published(of(Publish, out)[-1].view, at)
    assert not [d for d in said if isinstance(d, Toast)], "never announced as completed"
    assert Say(f"big.bin — Blocked: malware found ({SIGNATURE})", "L") in said
    uploads.run_ended("L")
    assert "L" not in uploads.uploads and uploads.summary().active == 0


def test_the_scan_fields_of_an_answer_are_read_strictly_and_may_be_left_out() -> None:
    answer = {"session_id": "s", "status": "completed", "object_key": "k", "etag": "e", "size": 1}
    assert CompletedUpload.from_json(answer).scan_status is None, "an older server sends none"
    read = CompletedUpload.from_json({**answer, "scan_status": "infected", "scan_signature": SIGNATURE})
    assert (read.scan_status, read.scan_signature) == ("infected", SIGNATURE)
    with pytest.raises(WireError, match=r"CompletedUpload\.scan_status: expected one of"):
        CompletedUpload.from_json({**answer, "scan_status": "maybe"})
