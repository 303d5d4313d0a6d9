"""ETA and its range against recorded throughput traces: steady, bursty, degrading."""

from __future__ import annotations

import random

from browser_py.engine.throughput import ThroughputMeter
from browser_py.engine.wording import eta_text, size_text, speed_text

MB = 1_000_000
PART = 8 * MB


def replay(trace: list[tuple[float, int]], window: float = 10.0) -> ThroughputMeter:
    meter = ThroughputMeter(window=window)
    meter.start(0.0)
    for at, nbytes in trace:
        meter.record(at, nbytes)
    return meter


def steady(seconds: int, rate: float) -> list[tuple[float, int]]:
    per_part = PART / rate
    return [(per_part * i, PART) for i in range(1, int(seconds / per_part) + 1)]


def test_steady_trace_gives_the_true_eta_and_the_range_narrows() -> None:
    trace = steady(30, rate=8 * MB)
    early = replay(trace[:2])
    late = replay(trace)
    now_early, now_late = trace[1][0], trace[-1][0]
    remaining = 800 * MB
    low_e, _, high_e = early.eta_range(now_early, remaining)  # type: ignore[misc]
    low_l, mid_l, high_l = late.eta_range(now_late, remaining)  # type: ignore[misc]
    assert abs(mid_l - 100) < 5  # 800 MB at 8 MB/s
    assert low_l <= 100 <= high_l
    assert (high_l - low_l) < (high_e - low_e) / 2, "more steady data, a narrower range"


def test_bursty_trace_keeps_the_truth_inside_a_wider_range() -> None:
    rng = random.Random(3)
    trace, t = [], 0.0
    for _ in range(40):  # parts arrive in bursts: several together, then a long gap; 4 MB/s on average
        gap = rng.choice([0.05, 0.05, 0.05, 7.85])
        t += gap
        trace.append((t, PART))
    meter = replay(trace)
    now = trace[-1][0]
    true_rate = sum(n for at, n in trace if at > now - 10) / 10
    low, mid, high = meter.eta_range(now, 400 * MB)  # type: ignore[misc]
    assert low <= 400 * MB / true_rate <= high
    steady_meter = replay(steady(40, 4 * MB))
    s_low, _, s_high = steady_meter.eta_range(40.0, 400 * MB)  # type: ignore[misc]
    assert (high - low) / mid > (s_high - s_low) / 100, "bursts widen the range"


def test_degrading_trace_follows_the_new_speed() -> None:
    fast = steady(20, 10 * MB)
    slow = [(20 + at, n) for at, n in steady(20, 2 * MB)]
    meter = replay(fast + slow)
    now = slow[-1][0]
    _, mid, _ = meter.eta_range(now, 200 * MB)  # type: ignore[misc]
    assert abs(mid - 100) < 20, "after the window passes, the ETA reflects 2 MB/s, not the old 10"


def test_no_range_before_data() -> None:
    meter = ThroughputMeter()
    meter.start(0.0)
    assert meter.eta_range(1.0, 100) is None


def test_wording() -> None:
    assert eta_text((180, 240, 360)) == "about 4 min (3–6)"
    assert eta_text((38, 40, 43)) == "about 40 s (38–43)"
    assert eta_text((230, 240, 250)) == "about 4 min"
    assert eta_text((1, 3, 4)) == "a few seconds left"
    assert eta_text((5400, 7200, 9000)) == "about 2 h (1.5–2.5)"
    assert eta_text(None) == ""
    assert size_text(67_108_864) == "67 MB"
    assert size_text(1_500_000_000) == "1.5 GB"
    assert size_text(999) == "999 B"
    assert speed_text(12_300_000) == "12 MB/s"
    assert speed_text(None) == ""
