"""The policy for many uploads, driven by hand: queue, connectivity, same file again, card actions, recovery."""

from __future__ import annotations

import random

from browser_py.engine.config import EngineConfig
from browser_py.engine.events import (
    Cancel,
    Connectivity,
    CopyIncomplete,
    Pause,
    Resume,
    SessionCreated,
    Start,
    UploadCompleted,
)
from browser_py.engine.failures import FailureKind
from browser_py.engine.link import LinkMemory
from browser_py.engine.manifest import Manifest
from browser_py.engine.phase import Phase
from browser_py.engine.upload import Upload
from browser_py.engine.uploadset import (
    EXTENDED_LIFETIME_SECONDS,
    Deliver,
    Directive,
    Forget,
    SaveLinkNote,
    Say,
    ShowSummary,
    Toast,
    UploadSet,
)
from wire.plan import MiB

PART = 8 * MiB


def manifest(local_id: str, created_at: float, staged: bool = True, **kw: object) -> Manifest:
    return Manifest(local_id, f"{local_id}.bin", 4 * PART, "application/octet-stream", f"fp-{local_id}",
                    created_at=created_at, staged=staged, **kw)  # type: ignore[arg-type]


def apply(uploads: UploadSet, directives: list[Directive]) -> list[Directive]:
    """What an adapter does with Deliver (the machine handles the event at once); the rest is returned."""
    rest = []
    for directive in directives:
        if isinstance(directive, Deliver):
            uploads.uploads[directive.local_id].handle(directive.event)
        else:
            rest.append(directive)
    return rest


def started(uploads: UploadSet, directives: list[Directive]) -> list[str]:
    return [d.local_id for d in directives if isinstance(d, Deliver) and isinstance(d.event, Start)]


def new_set(count: int, parallel: int = 2, **config: object) -> UploadSet:
    uploads = UploadSet(EngineConfig(parallel_uploads=parallel, **config), rng=random.Random(1))  # type: ignore[arg-type]
    for i in range(count):
        uploads.add(manifest(f"u{i}", float(i)), source_readable=True)
    return uploads


def to_uploading(upload: Upload, now: float) -> None:
    upload.handle(SessionCreated(now, f"S-{upload.manifest.local_id}", "k", PART, 4, {}, 1e9))
    assert upload.phase is Phase.UPLOADING


def phases(uploads: UploadSet) -> dict[str, Phase]:
    return {local_id: u.phase for local_id, u in uploads.uploads.items()}


def test_the_queue_starts_the_oldest_up_to_the_limit_and_fills_a_freed_place() -> None:
    uploads = new_set(3)
    admitted = uploads.admit(0.0)
    assert started(uploads, admitted) == ["u0", "u1"]
    apply(uploads, admitted)
    assert uploads.admit(0.0) == [], "the machine's phase is current at once: no second Start"
    assert phases(uploads)["u2"] is Phase.QUEUED
    u0 = uploads.uploads["u0"]
    to_uploading(u0, 1.0)
    u0.handle(Pause(2.0))  # a paused upload frees its place
    assert started(uploads, uploads.published(u0.view(), 2.0)) == ["u2"]


def test_going_offline_and_back_never_starts_more_than_the_limit() -> None:
    uploads = new_set(4)
    apply(uploads, uploads.admit(0.0))
    for local_id in ("u0", "u1"):
        to_uploading(uploads.uploads[local_id], 1.0)
    offline = uploads.set_online(False, 2.0)
    assert {d.local_id for d in offline if isinstance(d, Deliver)} == {"u0", "u1"}, "queued uploads are not told"
    apply(uploads, offline)
    assert phases(uploads) == {"u0": Phase.OFFLINE, "u1": Phase.OFFLINE, "u2": Phase.QUEUED, "u3": Phase.QUEUED}
    back = uploads.set_online(True, 3.0)
    assert all(isinstance(d.event, Connectivity) for d in back if isinstance(d, Deliver))
    assert started(uploads, back) == []
    apply(uploads, back)
    running = [p for p in phases(uploads).values() if p is not Phase.QUEUED]
    assert len(running) == 2 and set(running) == {Phase.RESUMING}


def test_nothing_new_starts_while_offline() -> None:
    uploads = new_set(2)
    apply(uploads, uploads.set_online(False, 0.0))
    assert uploads.admit(1.0) == []
    assert started(uploads, uploads.set_online(True, 2.0)) == ["u0", "u1"]


def test_the_same_file_again_continues_the_upload_we_have() -> None:
    uploads = new_set(1)
    upload = uploads.uploads["u0"]
    assert uploads.same_file("fp-u0") is upload and uploads.same_file("fp-other") is None
    apply(uploads, uploads.admit(0.0))
    to_uploading(upload, 1.0)
    assert uploads.picked_again(upload, 2.0) == [Say("u0.bin is already in your uploads", "u0")]
    upload.handle(Pause(3.0))
    out = uploads.picked_again(upload, 4.0)
    assert out[0] == Deliver("u0", Resume(4.0))
    assert isinstance(out[1], Say)


def test_a_file_whose_copy_was_lost_is_not_resumed_by_picking_it_again() -> None:
    uploads = new_set(1)
    upload = uploads.uploads["u0"]
    apply(uploads, uploads.refuse("u0", "not enough space", 0.0))
    assert upload.phase is Phase.FAILED and upload.error is not None
    assert upload.error.kind is FailureKind.SOURCE_LOST
    assert [type(d) for d in uploads.picked_again(upload, 1.0)] == [Say]


def test_card_actions_become_events_only_while_the_card_offers_them() -> None:
    uploads = new_set(1)
    apply(uploads, uploads.admit(0.0))
    upload = uploads.uploads["u0"]
    to_uploading(upload, 1.0)
    assert uploads.action("u0", "pause", 2.0) == [Deliver("u0", Pause(2.0))]
    assert uploads.action("u0", "resume", 2.0) == [], "not offered while uploading: a stale click is moot"
    assert uploads.action("u0", "dismiss", 2.0) == [], "a running upload cannot be dismissed"
    assert uploads.action("u0", "explode", 2.0) == [Say("unknown action 'explode'")]
    assert uploads.action("nope", "pause", 2.0) == [Say("no upload nope")]
    apply(uploads, uploads.action("u0", "pause", 2.0))
    assert uploads.action("u0", "resume", 3.0) == [Deliver("u0", Resume(3.0))]
    assert uploads.action("u0", "retry", 3.0) == [], "retry is offered only after a failure"
    assert uploads.action("u0", "cancel", 3.0) == [Deliver("u0", Cancel(3.0))]


def test_a_queued_upload_can_be_cancelled_without_starting() -> None:
    uploads = new_set(3, parallel=1)
    apply(uploads, uploads.admit(0.0))
    apply(uploads, uploads.action("u2", "cancel", 1.0))
    assert phases(uploads)["u2"] is Phase.CANCELLED
    uploads.run_ended("u2")
    assert "u2" not in uploads.uploads


def test_completion_is_toasted_once_counted_in_the_summary_and_teaches_the_link() -> None:
    uploads = new_set(2)
    apply(uploads, uploads.admit(0.0))
    u0 = uploads.uploads["u0"]
    uploads.published(uploads.uploads["u1"].view(), 0.0)
    to_uploading(u0, 1.0)
    u0.scheduler.in_flight.clear()
    u0.manifest.parts = {n: f"e{n}" for n in range(1, 5)}
    u0.handle(Pause(2.0))
    u0.handle(Resume(2.0))
    assert u0.phase is Phase.RESUMING
    u0.manifest.completed = True
    u0._on_completed([])
    out = uploads.published(u0.view(), 3.0)
    assert Toast("u0", "u0.bin has been uploaded", "/files/S-u0") in out
    assert any(isinstance(d, SaveLinkNote) for d in out)
    summary = next(d.summary for d in out if isinstance(d, ShowSummary))
    assert (summary.active, summary.text) == (1, "1 upload · 0%")
    assert not any(isinstance(d, Toast) for d in uploads.published(u0.view(), 4.0)), "toasted once"
    uploads.run_ended("u0")
    assert uploads.action("u0", "dismiss", 5.0)[0] == Forget("u0")
    assert "u0" not in uploads.views


def test_recovery_resumes_complete_copies_in_turn_and_an_incomplete_one_waits_for_its_file() -> None:
    uploads = UploadSet(EngineConfig(parallel_uploads=1))
    saved = [
        manifest("late", 3.0, session_id="S2", object_key="k", part_size=PART, part_count=4),
        manifest("early", 1.0, session_id="S1", object_key="k", part_size=PART, part_count=4),
        manifest("broken", 2.0, staged=False, session_id="S3", object_key="k", part_size=PART, part_count=4),
    ]
    directives = uploads.recover(saved, 10.0)
    assert directives == [Deliver("broken", CopyIncomplete(10.0))]
    apply(uploads, directives)
    admitted = uploads.admit(10.0)
    assert started(uploads, admitted) == ["early"], "oldest first, one at a time"
    apply(uploads, admitted)
    assert phases(uploads) == {"late": Phase.QUEUED, "early": Phase.RESUMING, "broken": Phase.NEEDS_FILE}


def test_parts_are_sized_from_what_earlier_uploads_measured_only_when_adaptive() -> None:
    link = LinkMemory()
    link.remember(40 * MiB, 0.0)
    fixed = UploadSet(EngineConfig(part_size=PART), link)
    assert fixed.add(manifest("a", 0.0), True).config.part_size == PART
    adaptive = UploadSet(EngineConfig(part_size=PART, adaptive_part_size=True), link)
    chosen = adaptive.add(manifest("b", 0.0), True).config.part_size
    assert chosen == link.part_size(4 * PART, PART) and chosen != PART


def test_a_finished_upload_found_at_boot_completes_without_holding_a_place() -> None:
    uploads = UploadSet(EngineConfig(parallel_uploads=1))
    done = manifest("done", 0.0, session_id="S", object_key="k", part_size=PART, part_count=4, completed=True)
    uploads.recover([done, manifest("next", 1.0)], 0.0)
    apply(uploads, uploads.admit(0.0))
    assert phases(uploads)["done"] is Phase.COMPLETED
    assert uploads.uploads["done"].handle(UploadCompleted(1.0, "e")) == [], "a late answer changes nothing"
    assert started(uploads, uploads.admit(1.0)) == ["next"]


def test_got_it_on_the_banner_reaches_the_engine_only_while_there_is_a_banner() -> None:
    uploads = new_set(1)
    apply(uploads, uploads.admit(0.0))
    assert uploads.action("u0", "hide-banner", 1.0) == [], "no banner yet: nothing to hide"
    upload = uploads.uploads["u0"]
    upload.told_to_leave = True
    to_uploading(upload, 1.0)
    (deliver,) = uploads.action("u0", "hide-banner", 2.0)
    apply(uploads, [deliver])
    assert upload.view().banner is None


def test_engine_settings_from_the_server_keep_defaults_for_what_is_left_out() -> None:
    chosen = EngineConfig.from_settings({"parallel_uploads": 3, "part_size": 16 * MiB, "adaptive_part_size": True})
    assert (chosen.parallel_uploads, chosen.part_size, chosen.adaptive_part_size) == (3, 16 * MiB, True)
    assert chosen.leave_threshold == EngineConfig().leave_threshold
    assert EngineConfig.from_settings({}) == EngineConfig()


def test_an_engine_that_outlives_its_pages_tells_every_upload_old_and_new() -> None:
    uploads = UploadSet(EngineConfig())
    before = uploads.add(manifest("a", 1.0), source_readable=True)
    assert before.keeps_running_for is None
    uploads.outlives_pages(True)
    after = uploads.add(manifest("b", 2.0), source_readable=True)
    assert before.keeps_running_for == after.keeps_running_for == EXTENDED_LIFETIME_SECONDS
    uploads.outlives_pages(False)
    assert before.keeps_running_for is None and after.keeps_running_for is None
