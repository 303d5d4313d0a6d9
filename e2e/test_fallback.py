"""Without SharedWorker, one tab runs the engine in a dedicated Worker (elected with a Web Lock); when it closes,
another open tab takes over and finishes the upload from the browser's copy."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import expect

from wire.plan import MiB

from .conftest import AppUnderTest, Browser, open_app, random_file, record_metric, sha256_file, wait_for
from .ui import pick

PART = 8 * MiB
NO_SHARED_WORKER = "Object.defineProperty(window, 'SharedWorker', { value: undefined, configurable: true });"


def test_dedicated_worker_fallback_hands_over_between_tabs(
    app: AppUnderTest, browser: Browser, tmp_path: Path
) -> None:
    context = browser.context
    assert context is not None
    context.add_init_script(NO_SHARED_WORKER)
    leader = open_app(context, app)
    follower = open_app(context, app)
    for page in (leader, follower):
        expect(page.locator("#engine")).to_have_attribute("data-mode", "dedicated")
    first_instance = leader.get_attribute("#engine", "data-instance")
    assert follower.get_attribute("#engine", "data-instance") == first_instance, "one engine for both tabs"

    source = random_file(tmp_path / "fallback.bin", 64 * MiB)
    app.proxy.state.rate_bytes_per_s = 16e6
    pick(leader, source)
    expect(leader.locator(".upload", has_text="fallback.bin")).to_have_attribute("data-saved", "true", timeout=60_000)
    wait_for(lambda: len(app.proxy.state.completed()) >= 2, 60, "two parts on S3")
    expect(follower.locator(".upload", has_text="fallback.bin")).to_be_visible()  # the other tab sees it too
    leader.close()  # the engine's tab goes: the follower must take over
    closed = time.monotonic()
    app.proxy.state.rate_bytes_per_s = None

    expect(follower.locator("#engine")).not_to_have_attribute("data-instance", first_instance or "", timeout=60_000)
    upload = follower.locator(".upload", has_text="fallback.bin")
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    wait_for(app.proxy.state.settled, 30, "the proxy to settle")
    resent = sum(p.received for p in app.proxy.state.snapshot()) - source.stat().st_size
    assert resent <= 4 * PART
    figures = {"resent_bytes": resent, "close_to_completed_s": round(time.monotonic() - closed, 2)}
    record_metric("fallback_handover", figures)
