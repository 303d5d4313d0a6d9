from browser_py.engine.throughput import ThroughputMeter


def test_no_rate_before_first_confirmation() -> None:
    m = ThroughputMeter()
    m.start(0.0)
    assert m.rate(1.0) is None
    assert m.eta(1.0, 100) is None


def test_steady_rate_and_eta() -> None:
    m = ThroughputMeter(window=10.0)
    m.start(0.0)
    for t in range(1, 21):  # 8 MB every second
        m.record(float(t), 8_000_000)
    assert m.rate(20.0) == 8_000_000
    assert m.eta(20.0, 80_000_000) == 10.0


def test_window_forgets_old_speed() -> None:
    m = ThroughputMeter(window=5.0)
    m.start(0.0)
    for t in range(1, 11):
        m.record(float(t), 10_000_000)
    for t in range(11, 21):  # the network degrades to a tenth
        m.record(float(t), 1_000_000)
    rate = m.rate(20.0)
    assert rate is not None and abs(rate - 1_000_000) < 250_000


def test_paused_time_does_not_count() -> None:
    m = ThroughputMeter()
    m.start(0.0)
    m.record(1.0, 1_000)
    m.stop()
    m.start(100.0)
    m.record(101.0, 1_000)
    assert m.rate(101.0) == 1_000
