"""Handing the rest of an upload to the browser (Background Fetch) in Chromium, through a real nginx that puts the
app and the store on one origin (Background Fetch sends no CORS preflight, so part URLs must be same-origin).

The chain: Chromium → nginx (``/`` → the app, ``/store/<bucket>/…`` → the recording, throttling S3 proxy) →
SeaweedFS. Every page creates the SharedWorker without ``extendedLifetime`` (as browsers without the option do, or
where a policy turns it off): the engine then hands off any upload whose estimate passes the (short) threshold, so a
test of a minute does not need a five-minute upload to see it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from server.nginx import Nginx
from tests.notify.conftest import WEBHOOK_SECRET
from tests.support.files import random_file, sha256_file
from tests.support.live_server import LiveServer, settings_for
from tests.support.notify import WebhookReceiver, running
from tests.support.proxied import start_proxied
from tests.support.s3_proxy import PartPut, s3_proxy
from tests.support.seaweed import SeaweedService
from wire.plan import MiB

from .conftest import RUNTIME_DIR, WEB_DIR, AppUnderTest, Browser, record_metric, wait_for
from .test_faults import kill_chromium
from .test_lifetime import WITHOUT_EXTENDED_LIFETIME
from .ui import pick

PART = 5 * MiB
RATE = 1.5e6  # bytes/s through the S3 proxy, shared by every PUT (the engine's and the browser's)


@dataclass
class ProxiedApp(AppUnderTest):
    """The app as browsers see it: at nginx's origin."""

    nginx: Nginx | None = None
    webhook: WebhookReceiver | None = None

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.origin + "/"

    def reset(self) -> None:
        """Between tests: an empty bucket and a fresh log of PUTs at full speed (the stack is the module's)."""
        wait_for(self.proxy.state.settled, 30, "the proxy to settle")
        for key in self.objects():
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        for upload in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        state = self.proxy.state
        with state.lock:
            state.puts.clear()
        state.rate_bytes_per_s, state.fault = None, None


@pytest.fixture(scope="module")
def bg_stack(
    seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory, runtime_built: None
) -> Iterator[ProxiedApp]:
    """One server, nginx, S3 proxy and webhook receiver for the module: each test has its own browser profile and
    file, and starts from an empty bucket (``bg_app``)."""
    started: list[LiveServer] = []

    def make(**overrides: Any) -> LiveServer:
        data_dir = tmp_path_factory.mktemp("server")
        started.append(LiveServer(settings_for(seaweed, data_dir, **overrides)).start())
        return started[-1]

    with running(WebhookReceiver(secret=WEBHOOK_SECRET)) as receiver, s3_proxy(seaweed.endpoint_url) as proxy:
        try:
            stack = start_proxied(
                make,
                tmp_path_factory.mktemp("nginx"),
                web_dir=WEB_DIR,
                runtime_dir=RUNTIME_DIR,
                s3_public_endpoint_url=proxy.url,
                part_size_bytes=PART,
                adaptive_part_size=False,
                leave_threshold_seconds=5.0,
                webhook_url=receiver.base_url + "/hooks",
                webhook_secret=WEBHOOK_SECRET,
                outbox_poll_seconds=0.2,
            )
            try:
                yield ProxiedApp(stack.server, proxy, seaweed.client, stack.nginx, receiver)
            finally:
                stack.nginx.stop()
        finally:
            for server in started:
                server.stop()


@pytest.fixture
def bg_app(bg_stack: ProxiedApp) -> Iterator[ProxiedApp]:
    bg_stack.reset()
    yield bg_stack


@pytest.fixture
def no_extended_lifetime(browser: Browser) -> Browser:
    assert browser.context is not None
    browser.context.add_init_script(WITHOUT_EXTENDED_LIFETIME)
    return browser


def open_page(browser: Browser, app: ProxiedApp) -> Page:
    assert browser.context is not None
    page = browser.context.new_page()
    page.on("console", lambda m: print(f"[page {m.type}] {m.text}") if m.type in ("error", "warning") else None)
    page.goto(app.url)
    page.wait_for_selector('#engine[data-state="ready"]', timeout=60_000)
    return page


def hand_off(browser: Browser, app: ProxiedApp, source: Path) -> tuple[Page, float]:
    """Pick the file and wait until the engine has handed the rest to the browser; return the page and when."""
    app.proxy.state.rate_bytes_per_s = RATE
    page = open_page(browser, app)
    pick(page, source)
    upload = page.locator(".upload", has_text=source.name)
    expect(upload).to_have_attribute("data-phase", "background", timeout=90_000)
    expect(upload.locator(".upload-status")).to_contain_text("in the background")
    return page, time.monotonic()


def never_twice_at_once(puts: list[PartPut]) -> None:
    """No part was ever being sent by two requests at the same time (the engine's and the browser's)."""
    by_part: dict[int, list[PartPut]] = {}
    for put in puts:
        by_part.setdefault(put.part_number, []).append(put)
    for number, sends in by_part.items():
        sends.sort(key=lambda p: p.started)
        for a, b in itertools.pairwise(sends):
            assert b.started >= a.ended, f"part {number} was sent twice at once: {a} and {b}"


def completed_event(webhook: WebhookReceiver, session_id: str) -> bool:
    return any(
        e["type"] == "upload_completed" and e["data"]["session_id"] == session_id for e in webhook.events.values()
    )


def session_of(app: ProxiedApp) -> str:
    keys = app.objects()
    return keys[0].rsplit("/", 1)[-1] if keys else ""


def test_the_browser_finishes_the_upload_with_every_page_closed(
    bg_app: ProxiedApp, no_extended_lifetime: Browser, tmp_path: Path
) -> None:
    """No part is sent by the engine and the browser at once (the S3 proxy's log of every PUT says when each began
    and ended), and none twice: the engine's PUTs in flight answer before the hand-off, and are not handed off."""
    size = 40 * MiB  # about 28 s at RATE: the engine sends the first parts, the rest goes with no page open
    source = random_file(tmp_path / "background.bin", size)
    page, handed = hand_off(no_extended_lifetime, bg_app, source)
    page.close()
    context = no_extended_lifetime.context
    assert context is not None and context.pages == []
    closed, closed_at = time.monotonic(), time.time()
    wait_for(bg_app.objects, 180, "the object in S3 with no page open", interval=0.5)
    done = time.monotonic()
    assert context.pages == [], "no page was opened to finish it"
    assert bg_app.only_object_sha256() == sha256_file(source)
    assert bg_app.multipart_uploads() == []
    session_id = session_of(bg_app)
    webhook = bg_app.webhook
    assert webhook is not None
    wait_for(lambda: completed_event(webhook, session_id), 30, "the completion event delivered with no page open")
    wait_for(bg_app.proxy.state.settled, 30, "the proxy to settle")
    puts = bg_app.proxy.state.snapshot()
    never_twice_at_once(puts)
    after_close = [p for p in puts if p.stored and p.ended > closed_at]
    assert after_close, "parts were stored after the last page closed"
    resent = sum(p.received for p in puts) - size
    assert resent == 0, f"{resent} bytes sent twice"
    record_metric("background_fetch_pages_closed", {
        "handed_off_to_completed_s": round(done - handed, 1), "after_close_s": round(done - closed, 1),
        "parts_stored_after_close": len(after_close), "resent_bytes": resent})


def test_a_part_that_failed_in_the_background_is_sent_on_the_next_visit(
    bg_app: ProxiedApp, no_extended_lifetime: Browser, tmp_path: Path
) -> None:
    size = 40 * MiB  # 8 parts: at most 4 are in flight when the engine decides, so the last is the browser's
    source = random_file(tmp_path / "one-fails.bin", size)
    page, _ = hand_off(no_extended_lifetime, bg_app, source)
    last = size // PART
    failed: list[int] = []

    def fail_the_last_part_once(put: PartPut) -> int | None:
        if put.part_number == last and not failed:
            failed.append(put.part_number)
            return 500
        return None

    bg_app.proxy.state.fault = fail_the_last_part_once
    page.close()
    bg_app.proxy.state.rate_bytes_per_s = None  # handed off: nothing here needs the browser slow
    wait_for(lambda: failed, 120, "the browser to send the last part")
    wait_for(lambda: all(p.done for p in bg_app.proxy.state.puts) and _all_but_last_stored(bg_app, last), 120,
             "the other parts stored by the browser")
    assert bg_app.objects() == [], "nothing is assembled while a part is missing"
    sent_before = len(bg_app.proxy.state.snapshot())
    next_visit_completes(no_extended_lifetime, bg_app, source)
    later = bg_app.proxy.state.snapshot()[sent_before:]
    assert [p.part_number for p in later] == [last], "the next visit sent only the part that failed"


def next_visit_completes(browser: Browser, app: ProxiedApp, source: Path) -> None:
    """A page opened at full speed: the card ends "completed", S3 holds the exact bytes, no part was sent twice at
    once, by the engine and the browser or by anyone."""
    app.proxy.state.rate_bytes_per_s = None
    page = open_page(browser, app)
    expect(page.locator(".upload", has_text=source.name)).to_have_attribute("data-phase", "completed",
                                                                             timeout=120_000)
    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    never_twice_at_once(app.proxy.state.snapshot())


def _all_but_last_stored(app: ProxiedApp, last: int) -> bool:
    stored = {p.part_number for p in app.proxy.state.completed()}
    return set(range(1, last)) <= stored


def test_the_browser_killed_during_the_background_transfer_loses_nothing(
    bg_app: ProxiedApp, no_extended_lifetime: Browser, tmp_path: Path
) -> None:
    size = 30 * MiB
    source = random_file(tmp_path / "killed.bin", size)
    page, _ = hand_off(no_extended_lifetime, bg_app, source)
    page.close()
    stored_at_hand_off = len(bg_app.proxy.state.completed())
    wait_for(lambda: len(bg_app.proxy.state.completed()) > stored_at_hand_off, 60, "the browser to store a part")
    assert kill_chromium(no_extended_lifetime.profile), "a Chromium process was killed"
    # A process that was starting at the kill survives it, and a new launch would hand itself to it and exit.
    wait_for(lambda: not kill_chromium(no_extended_lifetime.profile), 30, "every Chromium process of the profile gone")
    no_extended_lifetime.context = None
    wait_for(bg_app.proxy.state.settled, 30, "the proxy to notice the dead browser")
    assert bg_app.objects() == []
    no_extended_lifetime.launch().add_init_script(WITHOUT_EXTENDED_LIFETIME)
    next_visit_completes(no_extended_lifetime, bg_app, source)
