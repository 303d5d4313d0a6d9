"""Handing the rest of an upload to the browser's Background Fetch: when (engine/handoff.py), and what the machine
and the set of uploads do around it. No part is ever the engine's and the browser's at once."""

from __future__ import annotations

import copy
import random

import pytest

from browser_py.engine.commands import (
    CancelParts,
    Command,
    CompleteUpload,
    FetchState,
    HandOff,
    PersistManifest,
    RequestUrls,
    SendPart,
)
from browser_py.engine.events import (
    BackgroundEnded,
    Cancel,
    HandOffAnswered,
    PartFailed,
    PartSent,
    RemotePart,
    Start,
    StateFetched,
    Tick,
    UrlsReceived,
)
from browser_py.engine.handoff import HandOffInputs, registration_id, wants_hand_off
from browser_py.engine.manifest import Manifest
from browser_py.engine.upload import EngineConfig, Phase, Upload
from browser_py.engine.uploadset import Deliver, UploadSet
from browser_py.engine.view import LEAVE_BANNER_BROWSER

from .test_upload import PART, TRANSIENT, created, feed, new_manifest, of

RID = registration_id("S", "")


def inputs(**kw: object) -> HandOffInputs:
    values: dict[str, object] = dict(
        enabled=True, over=False, staged=True, parts_left=5, eta_high=600.0, grace=None, threshold=45.0
    )
    values.update(kw)
    return HandOffInputs(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "wanted"),
    [
        ({}, True),
        ({"grace": 300.0}, True),  # 600 s > 80 % of 5 min: the worker would stop before the end
        ({"grace": 300.0, "eta_high": 200.0}, False),  # the worker finishes it with no page open
        ({"eta_high": 30.0}, False),  # a short wait is not worth a registration
        ({"eta_high": None}, False),  # not measured yet
        ({"enabled": False}, False),
        ({"over": True}, False),
        ({"staged": False}, False),  # the browser reads the parts from its own copy
        ({"parts_left": 0}, False),
    ],
)
def test_the_hand_off_policy(changes: dict[str, object], wanted: bool) -> None:
    assert wants_hand_off(inputs(**changes)) is wanted


def draining(size_parts: int = 10) -> tuple[Upload, list[Command]]:
    """An upload whose ETA passed the threshold with no grace (one part took 19 s): every part left is hashed and
    signed for the hand-off, and its PUT in flight (part 2) is settling before it."""
    config = EngineConfig(concurrency=2, leave_threshold=10.0)
    upload = Upload(new_manifest(size=size_parts * PART), config, random.Random(1))
    upload.background_fetch = True
    feed(upload, Start(0.0))
    out = feed(upload, created(1.0, count=size_parts, with_urls=range(1, size_parts + 1), expires=5_000))
    out += feed(upload, PartSent(20.0, 1, '"e1"'))
    return upload, out + sign_for_hand_off(upload, out)


def sign_for_hand_off(upload: Upload, out: list[Command]) -> list[Command]:
    """Answer the engine's requests for long-lived URLs (and those they lead to)."""
    asked, more = of(RequestUrls, out), []
    while asked:
        request = asked.pop(0)
        assert request.background, "the URLs handed off must outlive the browser's queue"
        signed = {n: f"https://s3/long{n}" for n in request.part_numbers}
        answer = feed(upload, UrlsReceived(21.0, signed, 90_000.0, background=True))
        asked += of(RequestUrls, answer)
        more += answer
    return more


def handing_off(size_parts: int = 10) -> tuple[Upload, list[Command]]:
    """The same upload once its PUTs in flight have answered: handed off."""
    upload, out = draining(size_parts)
    for number in sorted(upload.in_flight):
        out += feed(upload, PartSent(30.0, number, f'"e{number}"'))
    return upload, out


def test_no_part_is_sent_by_the_engine_and_the_browser_at_once() -> None:
    """A PUT in flight when the hand-off is decided may already have reached the store: aborting it would not stop
    it. So no new PUT starts, the hand-off waits until each one in flight has answered, and a part that landed is
    not handed off; one that failed is."""
    upload, out = draining()
    assert upload.in_flight == {2} and upload.draining
    assert [s.number for s in of(SendPart, out)] == [1, 2], "none started once the hand-off was decided"
    assert not of(HandOff, out) and not of(CancelParts, out), "nothing handed off or aborted while a PUT is out"
    later = feed(upload, UrlsReceived(26.0, {4: "https://s3/long4"}, 90_000.0, background=True))
    later += feed(upload, Tick(27.0))
    assert not of(HandOff, later) and not of(SendPart, later), "no new PUT while the drain goes on"
    assert upload.phase is Phase.UPLOADING
    failed = copy.deepcopy(upload)
    later = feed(upload, PartSent(28.0, 2, '"e2"'))
    (hand_off,) = of(HandOff, later)
    assert [p.number for p in hand_off.parts] == list(range(3, 11)), "part 2 landed: it is not handed off"
    assert not of(SendPart, later) and not of(CancelParts, later) and upload.phase is Phase.BACKGROUND
    (hand_off,) = of(HandOff, feed(failed, PartFailed(28.0, 2, TRANSIENT)))
    assert [p.number for p in hand_off.parts] == list(range(2, 11)), "part 2 failed: the browser sends it"


def test_a_put_aborted_while_draining_is_withheld_from_the_hand_off() -> None:
    """A stalled PUT is aborted, but an abort does not stop bytes that already reached the store: the part stays the
    engine's (S3 says later whether it landed), never the browser's at the same time."""
    upload, _ = draining()
    out = feed(upload, Tick(200.0))  # part 2 has been out since 1 s: stalled
    assert of(CancelParts, out) == [CancelParts((2,))]
    (hand_off,) = of(HandOff, out)
    assert [p.number for p in hand_off.parts] == list(range(3, 11))


def test_parts_all_in_flight_at_the_decision_are_finished_by_the_engine() -> None:
    upload, _ = draining(size_parts=2)
    assert upload.draining
    out = feed(upload, PartSent(25.0, 2, '"e2"'))
    assert not of(HandOff, out) and of(CompleteUpload, out) and upload.phase is Phase.COMPLETING


def test_a_long_upload_hands_every_part_left_to_the_browser_and_sends_none_itself() -> None:
    upload, out = handing_off()
    assert upload.phase is Phase.BACKGROUND
    (hand_off,) = of(HandOff, out)
    assert [p.number for p in hand_off.parts] == list(range(3, 11)), "every part not confirmed"
    assert all(p.checksum_sha256 == f"c{p.number}" for p in hand_off.parts)
    assert [p.url for p in hand_off.parts] == [f"https://s3/long{n}" for n in range(3, 11)], "long-lived URLs"
    assert hand_off.registration_id == RID and hand_off.title == "big.bin"
    index = out.index(hand_off)
    assert not of(CancelParts, out), "no PUT was aborted: each one in flight answered first"
    saved = [c for c in out[:index] if isinstance(c, PersistManifest)][-1]
    assert saved.wait and Manifest.from_json(saved.manifest_json).background_id == RID
    assert not [c for c in out[index:] if isinstance(c, SendPart)]
    assert upload.view().banner == LEAVE_BANNER_BROWSER and upload.view().actions == ("cancel", "copy")
    # Answered, and whatever happens meanwhile (URLs, a late answer), the engine sends nothing.
    later = feed(upload, HandOffAnswered(41.0, RID))
    later += feed(upload, UrlsReceived(42.0, {5: "u5"}, 5_000.0))
    later += feed(upload, PartSent(43.0, 5, '"late"'))
    assert not of(SendPart, later) and upload.phase is Phase.BACKGROUND


def test_when_the_registration_ends_s3_decides_and_the_engine_sends_what_failed() -> None:
    upload, _ = handing_off()
    feed(upload, HandOffAnswered(41.0, RID))
    out = feed(upload, BackgroundEnded(100.0, RID))
    assert of(FetchState, out) and upload.phase is Phase.RESUMING
    assert Manifest.from_json(of(PersistManifest, out)[-1].manifest_json).background_id is None
    held = tuple(RemotePart(n, f'"b{n}"', PART) for n in range(1, 11) if n != 7)  # part 7 failed in the background
    out = feed(upload, StateFetched(101.0, "uploading", held))
    assert [s.number for s in of(SendPart, out)] == [7]


def test_an_upload_the_service_worker_completed_is_completed() -> None:
    upload, _ = handing_off()
    feed(upload, HandOffAnswered(41.0, RID))
    feed(upload, BackgroundEnded(100.0, RID))
    feed(upload, StateFetched(101.0, "completed"))
    assert upload.phase is Phase.COMPLETED


def test_a_refused_registration_gives_the_parts_back_and_is_not_asked_again() -> None:
    upload, _ = handing_off()
    out = feed(upload, HandOffAnswered(41.0, RID, refused="NotAllowedError"))
    assert upload.phase is Phase.RESUMING and of(FetchState, out)
    out = feed(upload, StateFetched(42.0, "uploading", (RemotePart(1, '"e1"', PART),)))
    assert of(SendPart, out) and upload.phase is Phase.UPLOADING
    out = feed(upload, PartSent(200.0, 3, '"e3"'))
    assert not of(HandOff, out)


def test_cancel_in_the_background_aborts_the_session() -> None:
    upload, _ = handing_off()
    feed(upload, Cancel(50.0))
    assert upload.phase is Phase.CANCELLED


def test_without_the_browser_api_nothing_is_handed_off() -> None:
    config = EngineConfig(concurrency=2, leave_threshold=10.0)
    upload = Upload(new_manifest(), config, random.Random(1))
    feed(upload, Start(0.0))
    out = feed(upload, created(1.0))
    out += feed(upload, PartSent(20.0, 1, '"e1"'))
    out += feed(upload, PartSent(40.0, 2, '"e2"'))
    assert not of(HandOff, out) and upload.phase is Phase.UPLOADING


def test_found_at_boot_it_waits_for_the_browser_until_a_page_says_the_registration_ended() -> None:
    config = EngineConfig(background_fetch=True)
    uploads = UploadSet(config)
    manifest = new_manifest(session_id="S", part_size=PART, part_count=10, background_id=RID, created_at=1.0)
    uploads.recover([Manifest.from_json(manifest.to_json())], 0.0)
    upload = uploads.uploads["L"]
    feed(upload, Start(1.0))
    assert upload.phase is Phase.BACKGROUND
    assert uploads.browser_takes_over(True, [RID], 2.0) == [], "still running: the browser's"
    assert uploads.browser_takes_over(False, None, 2.5) == [], "a page that has not asked the browser yet"
    (ended,) = uploads.browser_takes_over(True, [], 3.0)
    assert ended == Deliver("L", BackgroundEnded(3.0, RID))
    feed(upload, ended.event)
    assert upload.phase is Phase.RESUMING


def test_a_registration_being_made_is_not_taken_for_an_ended_one() -> None:
    config = EngineConfig(concurrency=2, leave_threshold=10.0, background_fetch=True)
    uploads = UploadSet(config)
    uploads.browser_takes_over(True, [], 0.0)
    upload = uploads.add(new_manifest(size=10 * PART), source_readable=True)
    assert upload.background_fetch
    feed(upload, Start(0.0))
    feed(upload, created(1.0, with_urls=range(1, 11), expires=5_000))
    sign_for_hand_off(upload, feed(upload, PartSent(20.0, 1, '"e1"')))
    for number in sorted(upload.in_flight):
        feed(upload, PartSent(23.0, number, f'"e{number}"'))
    assert upload.phase is Phase.BACKGROUND
    assert uploads.browser_takes_over(True, [], 41.0) == [], "a page that connected meanwhile does not know of it yet"
    (answered,) = uploads.hand_off_answered(RID, None, 42.0)
    feed(upload, answered.event)
    (ended,) = uploads.background_ended(RID, 90.0)
    feed(upload, ended.event)
    assert upload.phase is Phase.RESUMING


def test_the_deployment_must_allow_it() -> None:
    uploads = UploadSet(EngineConfig(background_fetch=False))
    uploads.browser_takes_over(True, [], 0.0)
    assert not uploads.add(new_manifest(), source_readable=True).background_fetch
