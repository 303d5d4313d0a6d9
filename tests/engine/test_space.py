from browser_py.engine.space import HEADROOM, space_shortfall


def test_fits_with_headroom() -> None:
    assert space_shortfall(100, quota=10_000_000_000, usage=0) is None


def test_too_big_says_how_much_is_needed_and_free() -> None:
    message = space_shortfall(5_000_000_000, quota=3_000_000_000, usage=1_000_000_000)
    assert message is not None
    assert "needs 5,017 MB" in message  # the file plus the headroom
    assert "2,000 MB are free" in message


def test_headroom_counts() -> None:
    assert space_shortfall(1_000, quota=HEADROOM, usage=0) is not None


def test_no_estimate_means_try() -> None:
    assert space_shortfall(10**12, quota=None, usage=None) is None
    assert space_shortfall(10**12, quota=100, usage=None) is None


def test_usage_above_quota_means_nothing_is_free() -> None:
    message = space_shortfall(1, quota=100, usage=500)
    assert message is not None and "0 MB are free" in message
