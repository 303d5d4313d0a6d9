"""The browser died before its copy of the file was complete: the card keeps S3's progress and asks for the file
again; the same file (size, fingerprint, the hashes of the parts S3 holds) continues from S3's parts, another is
refused and changes nothing."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from browser_py.engine.commands import (
    Command,
    CreateSession,
    FetchState,
    HashPart,
    PersistManifest,
    RequestUrls,
    SaveCopy,
    SendPart,
)
from browser_py.engine.config import EngineConfig
from browser_py.engine.events import (
    Cancel,
    CopyIncomplete,
    FileChosen,
    PartFailed,
    PartHashed,
    PartSent,
    RemotePart,
    SessionCreated,
    Staged,
    Start,
    StateFetched,
    UrlsReceived,
)
from browser_py.engine.failures import Failure, FailureKind
from browser_py.engine.manifest import Manifest
from browser_py.engine.phase import IllegalEvent, Phase
from browser_py.engine.upload import COPY_INCOMPLETE, Upload, different_bytes
from browser_py.engine.uploadset import Attach, Deliver, Directive, Say, UploadSet
from wire.plan import MiB

PART = 8 * MiB
COUNT = 6
SIZE = COUNT * PART - 3 * MiB


def crashed_manifest(**kw: object) -> Manifest:
    """As found at boot after a crash while copying: a session, parts 1 and 2 saved with their checksums, part 3's
    checksum saved (its URL was asked for) but not its confirmation."""
    fields: dict[str, object] = {
        "session_id": "S",
        "object_key": "k",
        "upload_token": "T",
        "part_size": PART,
        "part_count": COUNT,
        "parts": {1: "e1", 2: "e2"},
        "checksums": {1: "c1", 2: "c2", 3: "c3"},
        "created_at": 1.0,
        **kw,
    }
    return Manifest("L", "big.bin", SIZE, "application/octet-stream", "fp-big", staged=False,
                    **fields)  # type: ignore[arg-type]


def s3_holds(*numbers: int) -> StateFetched:
    return StateFetched(5.0, "uploading", tuple(RemotePart(n, f"s3-{n}", PART) for n in numbers))


def recovered(manifest: Manifest | None = None) -> tuple[UploadSet, Upload, list[Command]]:
    uploads = UploadSet(EngineConfig(parallel_uploads=1), rng=random.Random(1))
    directives = uploads.recover([manifest or crashed_manifest()], 2.0)
    assert directives == [Deliver("L", CopyIncomplete(2.0))]
    upload = uploads.uploads["L"]
    return uploads, upload, upload.handle(CopyIncomplete(2.0))


def of(kind: type, commands: Iterable[Command]) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def deliver(uploads: UploadSet, directives: list[Directive]) -> list[Command]:
    out: list[Command] = []
    for directive in directives:
        if isinstance(directive, Deliver):
            out += uploads.uploads[directive.local_id].handle(directive.event)
    return out


def answer_hashes(upload: Upload, commands: list[Command], sha: dict[int, str]) -> list[Command]:
    """Answer every HashPart (and those that follow) with the chosen file's checksums ``sha``."""
    out = list(commands)
    todo = of(HashPart, commands)
    while todo:
        command = todo.pop(0)
        more = upload.handle(PartHashed(6.0, command.number, sha[command.number]))
        out += more
        todo += of(HashPart, more)
    return out


THE_SAME = {n: f"c{n}" for n in range(1, COUNT + 1)}


def run_to_the_end(upload: Upload, commands: list[Command]) -> tuple[list[int], list[int]]:
    """Answer hashes, URL requests and PUTs at once until nothing is left to do; return (parts signed, parts sent)."""
    signed: list[int] = []
    sent: list[int] = []
    todo = list(commands)
    while todo:
        command = todo.pop(0)
        if isinstance(command, HashPart):
            todo += upload.handle(PartHashed(6.0, command.number, THE_SAME[command.number]))
        elif isinstance(command, RequestUrls):
            signed += command.part_numbers
            todo += upload.handle(UrlsReceived(7.0, {n: f"u{n}" for n in command.part_numbers}, 1e9, 7.0))
        elif isinstance(command, SendPart):
            sent.append(command.number)
            todo += upload.handle(PartSent(8.0, command.number, f"e{command.number}"))
    return signed, sent


def test_found_at_boot_the_card_shows_what_s3_holds_and_asks_for_the_file() -> None:
    _, upload, out = recovered()
    assert upload.phase is Phase.NEEDS_FILE
    assert of(FetchState, out) == [FetchState("S", "T")], "S3 is asked what it holds"
    upload.handle(s3_holds(1, 2, 3))  # part 3 landed; the manifest had not caught up
    view = upload.view()
    assert view.label == f"Action needed: {COPY_INCOMPLETE}"
    assert view.actions == ("choose", "cancel", "copy")
    assert view.bytes_confirmed == 3 * PART and view.percent == pytest.approx(300 * PART / SIZE, abs=0.1)
    assert upload.is_idle, "nothing happens until the user chooses the file"


def test_the_same_file_chosen_again_continues_from_the_parts_s3_holds() -> None:
    uploads, upload, _ = recovered()
    upload.handle(s3_holds(1, 2, 3))
    chosen = uploads.choose("L", "big.bin", SIZE, "fp-big", 3.0)
    assert chosen == [Attach("L"), Deliver("L", FileChosen(3.0))]
    out = deliver(uploads, chosen)
    assert upload.phase is Phase.CHECKING and upload.view().label == "Checking the file"
    assert [(c.number, c.offset, c.length) for c in of(HashPart, out)] == [(n, (n - 1) * PART, PART) for n in (1, 2, 3)]
    out = answer_hashes(upload, out, THE_SAME)
    assert of(SaveCopy, out) == [SaveCopy("L")], "copied into the browser again"
    assert upload.phase is Phase.QUEUED and upload.error is None
    saved = Manifest.from_json(of(PersistManifest, out)[-1].manifest_json)
    assert saved.parts == {1: "e1", 2: "e2", 3: "s3-3"} and not saved.staged

    out = deliver(uploads, uploads.admit(7.0))
    assert upload.phase is Phase.RESUMING and of(FetchState, out)
    out = upload.handle(s3_holds(1, 2, 3))
    assert upload.phase is Phase.UPLOADING
    assert upload.view().label.startswith("Resuming upload… 53% complete")
    assert of(PersistManifest, upload.handle(Staged(6.0))), "the new copy is recorded"
    assert upload.manifest.staged
    signed, sent = run_to_the_end(upload, out)
    assert sorted(signed) == sorted(sent) == [4, 5, 6], "no part S3 holds is signed, nor sent, again"
    assert upload.phase is Phase.COMPLETING


@pytest.mark.parametrize(
    ("name", "size", "fingerprint", "why"),
    [
        ("big.bin", SIZE + 1, "fp-big", "it is 47,185,921 bytes, big.bin is 47,185,920 bytes"),
        ("big.bin", SIZE // 2, "fp-big", "it is 24 MB, big.bin is 47 MB"),
        ("other.bin", SIZE, "fp-other", "its name, date or contents differ"),
    ],
)
def test_another_file_is_refused_with_the_reason_and_changes_nothing(
    name: str, size: int, fingerprint: str, why: str
) -> None:
    uploads, upload, _ = recovered()
    before = upload.manifest.to_json()
    out = uploads.choose("L", name, size, fingerprint, 3.0)
    assert out == [Say(f"{name} is not the file this upload was sending ({why}); choose big.bin to continue", "L")]
    assert upload.phase is Phase.NEEDS_FILE and upload.manifest.to_json() == before


def test_a_file_with_other_bytes_where_s3_holds_a_part_is_refused_and_changes_nothing() -> None:
    uploads, upload, _ = recovered()
    upload.handle(s3_holds(1, 2))
    before = upload.manifest.to_json()
    out = deliver(uploads, uploads.choose("L", "big.bin", SIZE, "fp-big", 3.0))
    out = answer_hashes(upload, out, {**THE_SAME, 2: "other"})
    assert upload.phase is Phase.NEEDS_FILE
    assert upload.view().label == f"Action needed: {different_bytes(2, 'big.bin')}"
    assert upload.view().actions == ("choose", "cancel", "copy"), "the user can choose again"
    assert not of(SaveCopy, out) and not of(PersistManifest, out)
    assert upload.manifest.to_json() == before
    # The right file next: accepted.
    out = answer_hashes(upload, deliver(uploads, uploads.choose("L", "big.bin", SIZE, "fp-big", 4.0)), THE_SAME)
    assert upload.phase is Phase.QUEUED and of(SaveCopy, out)


def test_a_chosen_file_that_cannot_be_read_is_refused_with_the_reason() -> None:
    uploads, upload, _ = recovered()
    out = deliver(uploads, uploads.choose("L", "big.bin", SIZE, "fp-big", 3.0))
    first = of(HashPart, out)[0].number
    upload.handle(PartFailed(4.0, first, Failure(FailureKind.FATAL, "NotReadableError")))
    assert upload.phase is Phase.NEEDS_FILE
    reason = "the file you chose could not be read (NotReadableError); choose it again"
    assert upload.view().label == f"Action needed: {reason}"


def test_a_part_s3_holds_whose_checksum_never_reached_the_disk_is_sent_again() -> None:
    uploads, upload, _ = recovered(crashed_manifest(checksums={1: "c1"}))
    upload.handle(s3_holds(1, 2))
    out = deliver(uploads, uploads.choose("L", "big.bin", SIZE, "fp-big", 3.0))
    assert [c.number for c in of(HashPart, out)] == [1], "only what can be checked is checked"
    answer_hashes(upload, out, THE_SAME)
    assert upload.manifest.parts == {1: "e1"}
    deliver(uploads, uploads.admit(7.0))
    out = upload.handle(s3_holds(1, 2))
    assert upload.manifest.parts == {1: "e1"}, "S3's part 2 is not trusted: it may hold other bytes"
    _, sent = run_to_the_end(upload, out)
    assert sorted(sent) == [2, 3, 4, 5, 6]


def test_the_same_file_picked_through_the_normal_input_is_attached_too() -> None:
    uploads, upload, _ = recovered()
    assert uploads.same_file("fp-big") is upload
    assert uploads.picked_again(upload, 3.0) == [Attach("L"), Deliver("L", FileChosen(3.0))]


def test_a_choice_for_a_card_that_no_longer_asks_for_a_file_is_moot() -> None:
    uploads, upload, _ = recovered()
    deliver(uploads, uploads.action("L", "cancel", 3.0))
    assert upload.phase is Phase.CANCELLED
    assert uploads.choose("L", "big.bin", SIZE, "fp-big", 4.0) == []
    assert uploads.choose("nope", "big.bin", SIZE, "fp-big", 4.0) == []


def test_a_hash_left_over_from_a_refused_choice_does_not_become_a_checksum() -> None:
    uploads, upload, _ = recovered(crashed_manifest(parts={1: "e1", 2: "e2"}, checksums={1: "c1", 2: "c2"}))
    upload.handle(StateFetched(5.0, "uploading", ()))  # S3 holds nothing after all (the parts were not stored)
    out = deliver(uploads, uploads.choose("L", "big.bin", SIZE, "fp-big", 3.0))
    assert not of(HashPart, out) and upload.phase is Phase.QUEUED
    uploads2, upload2, _ = recovered()
    out = deliver(uploads2, uploads2.choose("L", "big.bin", SIZE, "fp-big", 3.0))
    upload2.handle(PartHashed(4.0, 1, "wrong"))  # refused on part 1; part 2's hash is still out
    assert upload2.phase is Phase.NEEDS_FILE
    upload2.handle(PartHashed(4.5, 2, "from-the-wrong-file"))
    assert upload2.manifest.checksums == {1: "c1", 2: "c2", 3: "c3"}


def test_without_a_session_nothing_is_checked_and_a_session_is_created() -> None:
    uploads, upload, out = recovered(crashed_manifest(session_id=None, part_size=None, part_count=None, parts={},
                                                      checksums={}))
    assert not of(FetchState, out)
    out = deliver(uploads, uploads.choose("L", "big.bin", SIZE, "fp-big", 3.0))
    assert of(SaveCopy, out) and upload.phase is Phase.QUEUED
    out = deliver(uploads, uploads.admit(4.0))
    assert upload.phase is Phase.CREATING and of(CreateSession, out)


def test_s3_says_the_upload_completed_or_is_gone() -> None:
    _, upload, _ = recovered()
    upload.handle(StateFetched(5.0, "completed"))
    assert upload.phase is Phase.COMPLETED
    _, upload, _ = recovered()
    upload.handle(StateFetched(5.0, "aborted"))
    assert upload.phase is Phase.FAILED and upload.view().actions == ("cancel", "copy", "dismiss")


def test_the_new_events_are_illegal_where_they_cannot_happen() -> None:
    _, upload, _ = recovered()
    with pytest.raises(IllegalEvent):
        upload.handle(CopyIncomplete(3.0))
    upload.handle(Cancel(3.0))
    with pytest.raises(IllegalEvent):
        upload.handle(FileChosen(4.0))


def test_a_partial_copy_finishing_while_the_file_is_awaited_is_ignored() -> None:
    _, upload, _ = recovered()
    assert upload.handle(Staged(3.0)) == [] and not upload.manifest.staged


def test_while_the_copy_is_made_checksums_are_saved_before_any_put_and_their_urls_are_asked_meanwhile() -> None:
    upload = Upload(Manifest("N", "n.bin", 4 * PART, "x", "fp"), EngineConfig(part_size=PART), source_readable=True)
    out = upload.handle(Start(0.0)) + upload.handle(SessionCreated(1.0, "S", "k", PART, 4, {}, 1e9, "T", 1.0))
    out = answer_hashes(upload, out, THE_SAME)
    asked = of(RequestUrls, out)
    assert asked
    before = out[: out.index(asked[0])]
    saved = of(PersistManifest, before)[-1]
    assert saved.before_parts and not saved.wait, "on disk before any PUT; the URL request does not wait for it"
    assert set(asked[0].part_numbers) <= set(Manifest.from_json(saved.manifest_json).checksums)
