import random

import pytest

from browser_py.engine.backoff import Backoff


def test_ceiling_doubles_then_caps() -> None:
    b = Backoff(base=0.5, cap=10.0)
    assert [b.ceiling(a) for a in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert b.ceiling(10_000) == 10.0  # no overflow


def test_full_jitter_stays_within_ceiling_and_spreads() -> None:
    b = Backoff(base=1.0, cap=30.0)
    rng = random.Random(7)
    delays = [b.delay(4, rng) for _ in range(2_000)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    # Full jitter: spread over the whole range, not clustered at the ceiling.
    assert min(delays) < 0.5
    assert max(delays) > 7.5
    assert 3.0 < sum(delays) / len(delays) < 5.0


def test_budget() -> None:
    b = Backoff(max_attempts=3)
    assert not b.exhausted(2)
    assert b.exhausted(3)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        Backoff().ceiling(0)
