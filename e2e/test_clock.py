"""A browser whose clock is hours off still uploads: URL lifetimes are judged on the server's clock.

Chromium runs under libfaketime (``LD_PRELOAD``; pages and workers see the shifted ``Date``) while the server and S3
keep true time. Before the fix, +3 h made every URL look expired on arrival and the worker asked for fresh ones about
90 times a second without sending a byte.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Playwright, expect

from wire.plan import MiB

from .conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RECORD_LABELS,
    AppUnderTest,
    open_app,
    random_file,
    record_metric,
    sha256_file,
)
from .ui import pick

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
PART = 8 * MiB


@dataclass
class SkewedBrowser:
    """Chromium on a persistent profile, its clock shifted by ``offset`` (libfaketime syntax: "+3h", "-3h")."""

    playwright: Playwright
    profile: Path
    home: Path
    offset: str
    context: BrowserContext | None = None

    def launch(self) -> BrowserContext:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
               "XDG_CACHE_HOME": str(self.home / ".cache"), "LD_PRELOAD": str(LIBFAKETIME),
               "FAKETIME": self.offset}
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env=env,
        )
        self.context.add_init_script(RECORD_LABELS)
        for page in self.context.pages:
            page.close()
        return self.context

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None


@pytest.fixture(params=["+3h", "-3h"], ids=["clock-3h-ahead", "clock-3h-behind"])
def skewed_browser(request: pytest.FixtureRequest, playwright: Playwright, tmp_path: Path) -> Iterator[SkewedBrowser]:
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: `make faketime` installs Debian's faketime")
    browser = SkewedBrowser(playwright, tmp_path / "profile", tmp_path / "home", request.param)
    browser.launch()
    try:
        yield browser
    finally:
        browser.close()


def test_an_upload_completes_with_the_browser_clock_hours_off(
    app: AppUnderTest, skewed_browser: SkewedBrowser, tmp_path: Path
) -> None:
    assert skewed_browser.context is not None
    page = open_app(skewed_browser.context, app)
    shift_s = page.evaluate("Date.now() / 1000") - time.time()
    expected = 3 * 3600 if skewed_browser.offset.startswith("+") else -3 * 3600
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
    record_metric(f"wrong_clock_{skewed_browser.offset}", {"pick_to_completed_s": round(elapsed, 2),
                                                           "resent_bytes": sum(p.received for p in puts)
                                                           - source.stat().st_size})
