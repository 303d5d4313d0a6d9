"""The stall bound: from how long finished parts took, widened by stalls, floored, and fixed before any data."""

from __future__ import annotations

import pytest

from browser_py.engine.stall import StallWatch

MiB = 1024 * 1024


def test_before_any_part_finished_the_initial_bound_applies() -> None:
    assert StallWatch(initial=120.0).bound(8 * MiB) == 120.0


def test_the_bound_is_a_multiple_of_what_finished_parts_took() -> None:
    watch = StallWatch(factor=4.0, minimum=1.0)
    watch.part_finished(8 * MiB, 10.0)
    assert watch.bound(8 * MiB) == pytest.approx(40.0)
    assert watch.bound(4 * MiB) == pytest.approx(20.0), "a shorter last part gets a shorter bound"


def test_the_bound_never_drops_below_the_floor() -> None:
    watch = StallWatch(factor=4.0, minimum=30.0)
    watch.part_finished(8 * MiB, 0.5)
    assert watch.bound(8 * MiB) == 30.0


def test_newer_parts_move_the_estimate_smoothly() -> None:
    watch = StallWatch(factor=1.0, minimum=0.0, smoothing=0.5)
    watch.part_finished(MiB, 10.0)
    watch.part_finished(MiB, 20.0)
    assert watch.bound(MiB) == pytest.approx(15.0)


def test_a_stall_doubles_the_allowance_and_a_finished_part_pulls_it_back() -> None:
    watch = StallWatch(factor=1.0, minimum=0.0, smoothing=1.0)
    watch.part_finished(MiB, 10.0)
    watch.part_stalled()
    assert watch.bound(MiB) == pytest.approx(20.0)
    watch.part_finished(MiB, 10.0)
    assert watch.bound(MiB) == pytest.approx(10.0)


def test_a_stall_before_any_measurement_keeps_the_initial_bound() -> None:
    watch = StallWatch(initial=120.0)
    watch.part_stalled()
    assert watch.bound(MiB) == 120.0


def test_nonsense_durations_are_ignored() -> None:
    watch = StallWatch(initial=120.0)
    watch.part_finished(0, 5.0)
    watch.part_finished(MiB, 0.0)
    assert watch.seconds_per_byte is None
