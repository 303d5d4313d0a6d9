"""The tuner against simulated links: it should find the fewest connections that fill a link, climb where each
connection is slow, back off when connections fail, and follow a link that changes; part sizes from measured rates."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from browser_py.engine.tuning import ConcurrencyTuner, TuningConfig, choose_part_size
from wire.plan import MAX_PARTS, MIN_PART_SIZE, MiB, TiB

MB = 1_000_000
PART = 8 * MiB


def simulate(
    tuner: ConcurrencyTuner,
    link: Callable[[int, float], float],
    parts: int,
    *,
    fail: Callable[[int], float] = lambda n: 0.0,
    seed: int = 7,
    start: float = 0.0,
) -> tuple[list[int], float]:
    """Processor sharing: ``n`` PUTs in flight share ``link(n, now)`` bytes/s equally. A PUT fails at its end with
    probability ``fail(n)`` and its part is sent again. Returns the concurrency after every event and the end time."""
    rng = random.Random(seed)
    now, queued = start, parts
    flight: list[list[float]] = []  # [bytes left, started at]
    levels: list[int] = []
    while queued or flight:
        while len(flight) < tuner.concurrency and queued:
            flight.append([float(PART), now])
            queued -= 1
        n = len(flight)
        each = link(n, now) / n
        step = min(left for left, _ in flight) / each
        now += step
        for f in flight:
            f[0] -= each * step
        finished = [f for f in flight if f[0] <= 1e-3]
        flight = [f for f in flight if f[0] > 1e-3]
        for _, began in finished:
            if rng.random() < fail(n):
                tuner.part_failed(now)
                queued += 1
            else:
                tuner.part_sent(now, PART, now - began)
            levels.append(tuner.concurrency)
    return levels, now


def settled(levels: list[int], tail: float = 0.3) -> int:
    """The level held most over the last part of the run."""
    return Counter(levels[int(len(levels) * (1 - tail)) :]).most_common(1)[0][0]


def test_finds_the_fewest_connections_that_fill_the_link() -> None:
    # Each connection moves 50 MB/s; the link holds 150 MB/s: three fill it, a fourth only adds contention.
    tuner = ConcurrencyTuner()
    levels, _ = simulate(tuner, lambda n, _t: min(n, 3) * 50 * MB, 2000)
    assert settled(levels) == 3
    assert tuner.rate is not None and tuner.rate == pytest.approx(150 * MB, rel=0.05)


def test_climbs_where_each_connection_is_slow() -> None:
    # Long round trips: every connection is window-limited to 5 MB/s, the link has room for far more.
    tuner = ConcurrencyTuner()
    levels, _ = simulate(tuner, lambda n, _t: n * 5 * MB, 600)
    assert settled(levels) == TuningConfig().max_concurrency
    assert max(levels) == TuningConfig().max_concurrency, "never more than a browser opens per host"


def test_comes_down_when_more_connections_hurt() -> None:
    # Beyond two connections the store thrashes: every extra one costs 20%.
    tuner = ConcurrencyTuner()
    levels, _ = simulate(tuner, lambda n, _t: min(n, 2) * 100 * MB * (0.8 ** max(0, n - 2)), 2000)
    assert settled(levels) == 2


def test_backs_off_when_connections_fail() -> None:
    # A flaky path that drops half the PUTs once more than two are open.
    tuner = ConcurrencyTuner(TuningConfig(initial_concurrency=6))
    levels, _ = simulate(tuner, lambda n, _t: n * 20 * MB, 1500, fail=lambda n: 0.5 if n > 2 else 0.0)
    assert levels[0] == 6
    assert settled(levels) <= 2
    assert 0 < tuner.error_rate < 0.5


def test_follows_a_link_that_changes() -> None:
    # First slow per connection (climb), then a narrow link where one connection is all it takes.
    tuner = ConcurrencyTuner()
    levels, now = simulate(tuner, lambda n, _t: n * 5 * MB, 600)
    assert settled(levels) == 6
    later, _ = simulate(tuner, lambda n, _t: min(n, 1) * 40 * MB, 2000, start=now)
    assert settled(later) <= 2


def test_stays_within_bounds() -> None:
    config = TuningConfig(initial_concurrency=2, min_concurrency=2, max_concurrency=3)
    tuner = ConcurrencyTuner(config)
    levels, _ = simulate(tuner, lambda n, _t: n * 5 * MB, 400, fail=lambda n: 0.3)
    assert set(levels) <= {2, 3}


def test_a_pause_is_not_a_slow_link() -> None:
    tuner = ConcurrencyTuner()
    _, now = simulate(tuner, lambda n, _t: min(n, 4) * 25 * MB, 300)
    level = tuner.concurrency
    tuner.pause(now)
    # An hour later, the same link: the gap must not read as a collapse of goodput.
    after, _ = simulate(tuner, lambda n, _t: min(n, 4) * 25 * MB, 40, start=now + 3600)
    assert abs(after[-1] - level) <= 1
    assert min(after) >= 3


@pytest.mark.parametrize("told", [True, False])
def test_a_load_that_ends_is_not_credited_to_more_connections(told: bool) -> None:
    """The browser's copy of the file competes with the first PUTs; when it ends, parts go faster whatever the
    level. Told so, the tuner compares like with like and stays where the link is full (4); not told, it credits
    the speed-up to the extra connection it was probing and climbs past it."""
    tuner = ConcurrencyTuner()
    _, now = simulate(tuner, lambda n, _t: min(n, 4) * 8 * MB, 12)  # while the copy is written
    if told:
        tuner.conditions_changed(now)
    after, _ = simulate(tuner, lambda n, _t: min(n, 4) * 20 * MB, 60, start=now)
    assert (settled(after) == 4) is told


def test_per_connection_rate_is_bytes_over_busy_time() -> None:
    tuner = ConcurrencyTuner()
    assert tuner.per_connection_rate is None and tuner.rate is None and tuner.error_rate == 0.0
    tuner.part_sent(1.0, 10 * MB, 2.0)
    tuner.part_sent(2.0, 10 * MB, 0.5)
    tuner.part_failed(3.0)
    assert tuner.per_connection_rate == pytest.approx(8 * MB)
    assert tuner.error_rate == pytest.approx(1 / 3)


def test_deterministic() -> None:
    runs = [simulate(ConcurrencyTuner(), lambda n, _t: min(n, 3) * 50 * MB, 500, fail=lambda n: 0.05)[0]
            for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_concurrency": 0}, "concurrency"),
        ({"min_concurrency": 5, "initial_concurrency": 4}, "concurrency"),
        ({"max_concurrency": 3}, "concurrency"),
        ({"min_part_size": 4 * MiB}, "part_size"),
        ({"max_part_size": 6 * MiB}, "part_size"),
        ({"epoch_min_parts": 0}, "positive"),
    ],
)
def test_config_is_validated(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TuningConfig(**kwargs)


# ---------------------------------------------------------------------------------------------------- part size


def test_part_size_without_a_measurement_is_the_default() -> None:
    assert choose_part_size(512 * MiB, per_connection_rate=None) == 8 * MiB


def test_part_size_follows_the_rate_per_connection() -> None:
    # About two seconds per part per connection, in whole MiB.
    assert choose_part_size(10 * 2**30, per_connection_rate=10 * MB) == 20 * MiB
    assert choose_part_size(10 * 2**30, per_connection_rate=100 * MB) == 64 * MiB  # capped
    assert choose_part_size(10 * 2**30, per_connection_rate=0.5 * MB) == 8 * MiB  # floored


def test_part_size_shrinks_on_a_flaky_path() -> None:
    assert choose_part_size(10 * 2**30, per_connection_rate=100 * MB, error_rate=0.3) == 8 * MiB
    assert choose_part_size(10 * 2**30, per_connection_rate=1 * MB, error_rate=0.3) == MIN_PART_SIZE


def test_part_size_fits_the_file_and_s3() -> None:
    assert choose_part_size(3 * MiB, per_connection_rate=100 * MB) == 8 * MiB  # one part; never under the floor
    assert choose_part_size(20 * MiB + 1, per_connection_rate=100 * MB) == 21 * MiB  # no bigger than the file
    huge = choose_part_size(5 * TiB, per_connection_rate=1 * MB)
    assert -(-5 * TiB // huge) <= MAX_PARTS
