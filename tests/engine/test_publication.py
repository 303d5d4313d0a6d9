"""How often a card is published (engine/publication.py), through the machine: a bounded rate while only numbers
move, at once when the user can do or is told something new, and nothing held back is ever lost."""

from __future__ import annotations

import random

import pytest

from browser_py.engine.commands import Command, Publish, Wakeup
from browser_py.engine.events import PartSent, Pause, Start, Tick, UploadCompleted
from browser_py.engine.upload import EngineConfig, Phase, Upload

from .test_upload import PART, created, feed, new_manifest, of

INTERVAL = 0.1


def uploading(parts: int, concurrency: int = 4) -> Upload:
    """An upload of ``parts`` parts, every URL at hand, its first parts in flight since t=0.5 s (no "you can leave"
    banner: a new banner goes out at once, which is not what these tests are about)."""
    config = EngineConfig(concurrency=concurrency, view_interval=INTERVAL, leave_threshold=1e9)
    upload = Upload(new_manifest(size=parts * PART), config, random.Random(1))
    feed(upload, Start(0.0))
    feed(upload, created(0.5, count=parts, with_urls=range(1, parts + 1)))
    assert upload.phase is Phase.UPLOADING
    return upload


def published(out: list[Command]) -> list[float]:
    return [p.view.percent for p in of(Publish, out)]


def test_parts_finishing_fast_are_published_at_most_once_an_interval_and_none_is_lost() -> None:
    upload = uploading(parts=200)
    out = feed(upload, PartSent(1.0, 1, "e1"))
    assert published(out) == [0.5], "the first change after a quiet while goes out at once"
    out = feed(upload, PartSent(1.02, 2, "e2")) + feed(upload, PartSent(1.04, 3, "e3"))
    assert not of(Publish, out), "numbers only, and too soon"
    assert [w.at for w in of(Wakeup, out)] == [pytest.approx(1.0 + INTERVAL)], "a tick is asked for when it is due"
    out = feed(upload, Tick(1.0 + INTERVAL))
    assert published(out) == [1.5], "the held-back card, with every part that finished meanwhile"
    assert not [w for w in of(Wakeup, out) if w.at < 2.0], "nothing held back now: no early timer"


def test_the_rate_stays_bounded_however_fast_parts_finish() -> None:
    upload = uploading(parts=120)
    publications = 0
    now = 1.0
    for number in range(1, 101):  # a part every 10 ms for 1 s; the timer rings when asked
        now += 0.01
        out = feed(upload, PartSent(now, number, f"e{number}"))
        wakeups = of(Wakeup, out)
        publications += len(of(Publish, out))
        if wakeups and wakeups[-1].at <= now + 0.01:
            publications += len(of(Publish, feed(upload, Tick(wakeups[-1].at))))
    assert publications <= 1 / INTERVAL + 1
    assert publications >= 1 / INTERVAL - 1, "still about one every interval: the bar keeps moving"


def test_slow_parts_are_published_as_they_finish_with_no_extra_timer() -> None:
    upload = uploading(parts=10, concurrency=1)
    for number in range(1, 4):
        out = feed(upload, PartSent(1.0 + number, number, f"e{number}"))
        assert published(out) == [number * 10.0]
        assert all(w.at > 10.0 for w in of(Wakeup, out)), "only the stall bound's timer"


def test_a_new_phase_goes_out_at_once_even_right_after_a_publication() -> None:
    upload = uploading(parts=10)
    feed(upload, PartSent(1.0, 1, "e1"))
    out = feed(upload, PartSent(1.01, 2, "e2"))
    assert not of(Publish, out)
    out = feed(upload, Pause(1.02))
    (view,) = [p.view for p in of(Publish, out)]
    assert (view.phase, view.percent, view.actions) == ("paused", 20.0, ("resume", "cancel", "copy")), \
        "the pause with the progress held back"


def test_an_idle_upload_holds_nothing_back() -> None:
    """Its driver has stopped, so no tick would come: a part answering after the pause shows at once."""
    upload = uploading(parts=10)
    feed(upload, PartSent(1.0, 1, "e1"))
    feed(upload, Pause(1.01))
    assert upload.is_idle
    out = feed(upload, PartSent(1.02, 2, "e2"))
    assert published(out) == [20.0], "a part in flight when paused still lands, and shows"
    assert not of(Wakeup, out)


def test_the_final_state_is_published_at_once() -> None:
    upload = uploading(parts=2)
    feed(upload, PartSent(1.0, 1, "e1"))
    feed(upload, PartSent(1.01, 2, "e2"))
    assert upload.phase is Phase.COMPLETING
    out = feed(upload, UploadCompleted(1.02, "uploads/u/S", None))
    assert [(p.view.phase, p.view.percent) for p in of(Publish, out)] == [("completed", 100.0)]


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="view_interval"):
        EngineConfig(view_interval=-1.0)
