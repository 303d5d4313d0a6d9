"""Closing the last tab no longer stops the upload: the SharedWorker is created with ``extendedLifetime`` and keeps
sending for minutes with no page open, while the browser runs.

The proof does not rest on a DevTools session keeping the worker alive: the same setup with the option withheld
(every page creating the worker without it) stops sending at the close.
"""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import expect

from wire.plan import MiB

from .conftest import AppUnderTest, Browser, open_app, random_file, record_metric, sha256_file, wait_for
from .ui import pick

PART = 8 * MiB
SIZE = 64 * MiB
RATE = 2e6  # bytes/s through the proxy once the page is closed: about 34 s for the file, all of it after the close
#: Until the page closes the proxy crawls, so no part is stored by then: sending starts at the pick, and a slow save
#: (or parts sharing the link all ending at once) would otherwise let most parts start before the close.
CRAWL = 1e5
#: An init script that has every page create the worker without ``extendedLifetime`` (the same options in every
#: page, as the browser requires): the worker then ends with the last page, as in browsers without the option.
WITHOUT_EXTENDED_LIFETIME = """
const NativeSharedWorker = window.SharedWorker;
window.SharedWorker = function SharedWorker(url, options) {
  return new NativeSharedWorker(url, { type: options.type, name: options.name });  // extendedLifetime withheld
};
"""


def close_mid_upload(app: AppUnderTest, browser: Browser, source: Path, lifetime: str) -> float:
    """Pick the file, wait until it is saved and its first parts are on their way, close the only page, then let
    the link run at RATE; return when it closed."""
    context = browser.context
    assert context is not None
    app.proxy.state.rate_bytes_per_s = CRAWL
    page = open_app(context, app)
    expect(page.locator("#engine")).to_have_attribute("data-lifetime", lifetime)
    pick(page, source)
    expect(page.locator(".upload", has_text=source.name)).to_have_attribute("data-saved", "true", timeout=60_000)
    wait_for(lambda: app.proxy.state.snapshot(), 60, "parts on their way to S3")
    page.close()
    assert context.pages == [], "no page of the app is open"
    closed = time.time()
    app.proxy.state.rate_bytes_per_s = RATE
    return closed


def test_the_upload_completes_in_s3_with_every_page_closed(app: AppUnderTest, browser: Browser,
                                                           tmp_path: Path) -> None:
    source = random_file(tmp_path / "outlives.bin", SIZE)
    closed = close_mid_upload(app, browser, source, "extended")
    stored_at_close = len([p for p in app.proxy.state.completed() if p.ended <= closed])
    wait_for(lambda: app.objects(), 240, "the object in S3 with no page open", interval=0.5)
    assert browser.context is not None and browser.context.pages == []
    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    wait_for(app.proxy.state.settled, 30, "the proxy to settle")
    stored = app.proxy.state.completed()
    kept_sending_s = max(p.ended for p in stored) - closed
    assert kept_sending_s > 10, f"parts were stored until {kept_sending_s:.1f} s after the close"
    started_after = [p for p in stored if p.started > closed + 1]
    assert len(started_after) >= 2, "the worker kept starting parts after the last page closed"
    resent = sum(p.received for p in app.proxy.state.snapshot()) - SIZE
    assert resent == 0, f"{resent} bytes sent twice"
    record_metric("last_tab_closed_extended_lifetime", {
        "kept_sending_after_close_s": round(kept_sending_s, 1), "parts_stored_after_close": len(stored) -
        stored_at_close, "resent_bytes": resent})


def test_without_extended_lifetime_the_same_upload_stops_at_the_close(app: AppUnderTest, browser: Browser,
                                                                       tmp_path: Path) -> None:
    assert browser.context is not None
    browser.context.add_init_script(WITHOUT_EXTENDED_LIFETIME)
    source = random_file(tmp_path / "stops.bin", SIZE)
    closed = close_mid_upload(app, browser, source, "page")
    # The worker ends with its last page. The network may still finish the bodies already streaming, but nothing
    # starts another part: wait until those are over, then watch.
    wait_for(app.proxy.state.settled, 60, "the PUTs in flight at the close to end")
    # A living worker retries a cut-off part within a second or two (backoff) and starts the next at once.
    time.sleep(10)  # the observation window itself, not a wait for a condition
    later = app.proxy.state.snapshot()
    assert [p for p in later if p.started > closed + 1] == [], "no part was started after the close"
    assert app.objects() == [] and len(app.multipart_uploads()) == 1, "the upload waits for the next visit"
    record_metric("last_tab_closed_page_lifetime", {
        "last_put_ended_after_close_s": round(max(p.ended for p in later) - closed, 1),
        "puts_started_after_close": 0})

    # The next visit resumes it, as before.
    app.proxy.state.rate_bytes_per_s = None
    page = open_app(browser.context, app)
    expect(page.locator(".upload", has_text=source.name)).to_have_attribute("data-phase", "completed",
                                                                            timeout=120_000)
    assert app.only_object_sha256() == sha256_file(source)
