"""A browser whose clock is hours off still uploads: URL lifetimes are judged on the server's clock.

Chromium runs under libfaketime (``LD_PRELOAD``; pages and workers see the shifted ``Date``) while the server and S3
keep true time. Before the fix, +3 h made every URL look expired on arrival and the worker asked for fresh ones about
90 times a second without sending a byte.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, expect

from wire.plan import MiB

from .conftest import (
    AppUnderTest,
    Browser,
    open_app,
    random_file,
    record_metric,
    sha256_file,
)
from .ui import pick

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
PART = 8 * MiB


@pytest.fixture(params=["+3h", "-3h"], ids=["clock-3h-ahead", "clock-3h-behind"])
def skewed_browser(
    request: pytest.FixtureRequest, playwright: Playwright, browser_temp: Path, tmp_path: Path
) -> Iterator[Browser]:
    """Chromium on a persistent profile, its clock shifted by ``request.param`` (libfaketime syntax: "+3h")."""
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: `make faketime` installs Debian's faketime")
    browser = Browser(playwright, tmp_path / "profile", tmp_path / "home", browser_temp,
                      env={"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": request.param})  # fmt: skip
    browser.launch()
    try:
        yield browser
    finally:
        browser.close()


def test_an_upload_completes_with_the_browser_clock_hours_off(
    app: AppUnderTest, skewed_browser: Browser, tmp_path: Path
) -> None:
    assert skewed_browser.context is not None
    offset = skewed_browser.env["FAKETIME"]
    page = open_app(skewed_browser.context, app)
    shift_s = page.evaluate("Date.now() / 1000") - time.time()
    expected = 3 * 3600 if offset.startswith("+") else -3 * 3600
    assert abs(shift_s - expected) < 120, f"the browser's clock is {shift_s:.0f} s off, not {expected} s"

    source = random_file(tmp_path / "skewed.bin", 48 * MiB)
    picked = time.monotonic()
    pick(page, source)
    upload = page.locator(".upload", has_text=source.name)
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    elapsed = time.monotonic() - picked

    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    puts = app.proxy.state.snapshot()
    # Every URL was fresh when used: one PUT per part, none refused as expired.
    assert sorted(p.part_number for p in puts) == list(range(1, 7)), [(p.part_number, p.status) for p in puts]
    assert all(p.status == 200 for p in puts)
    labels = page.evaluate("window.__labels")
    assert not [label for label in labels if label.startswith("Action needed")], labels
    record_metric(f"wrong_clock_{offset}", {"pick_to_completed_s": round(elapsed, 2),
                                            "resent_bytes": sum(p.received for p in puts) - source.stat().st_size})
