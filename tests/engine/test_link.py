"""The link memory: earlier uploads size the next one's parts; a damaged memory only means starting afresh."""

from __future__ import annotations

import pytest

from browser_py.engine.link import LinkMemory
from wire.plan import MiB

GiB = 1024 * MiB


def test_before_anything_was_measured_the_default_applies() -> None:
    assert LinkMemory().part_size(GiB, 8 * MiB) == 8 * MiB
    assert LinkMemory().part_size(GiB, None) is None, "None: the server's own default"


def test_a_fast_link_gets_bigger_parts_and_a_slow_one_the_floor() -> None:
    fast = LinkMemory()
    fast.remember(20e6, 0.0)  # 20 MB/s per PUT: about two seconds a part is 40 MB
    assert fast.part_size(4 * GiB, 8 * MiB) == 39 * MiB
    slow = LinkMemory()
    slow.remember(1e6, 0.0)
    assert slow.part_size(4 * GiB, 8 * MiB) == 8 * MiB


def test_a_flaky_link_gets_small_parts_whatever_its_speed() -> None:
    flaky = LinkMemory()
    flaky.remember(20e6, 0.3)
    assert flaky.part_size(4 * GiB, 8 * MiB) <= 8 * MiB


def test_newer_uploads_weigh_more() -> None:
    memory = LinkMemory()
    memory.remember(10e6, 0.0)
    memory.remember(30e6, 0.2)
    assert memory.per_connection_rate == pytest.approx(20e6)
    assert memory.error_rate == pytest.approx(0.1)
    assert memory.uploads == 2


def test_nothing_measured_is_not_remembered() -> None:
    memory = LinkMemory()
    for rate in (None, 0.0, -1.0, float("inf"), float("nan")):
        memory.remember(rate, 0.0)
    assert memory.per_connection_rate is None and memory.uploads == 0


def test_it_survives_a_round_trip_through_json() -> None:
    memory = LinkMemory()
    memory.remember(12.5e6, 0.05)
    again = LinkMemory.from_json(memory.to_json())
    assert (again.per_connection_rate, again.error_rate, again.uploads) == (12.5e6, 0.05, 1)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"version": 99, "per_connection_rate": 1e6}',
                                  '{"version": 1, "per_connection_rate": "fast"}',
                                  '{"version": 1, "per_connection_rate": -5}'])
def test_a_damaged_or_foreign_memory_starts_afresh(text: str) -> None:
    memory = LinkMemory.from_json(text)
    assert memory.per_connection_rate is None and memory.uploads == 0
