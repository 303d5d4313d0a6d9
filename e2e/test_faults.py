"""The fault matrix: whatever the network, the browser or the servers do, the object ends up with the exact bytes.

Each test uploads a random file through the real app in Chromium, injects one fault mid-upload, and asserts: the S3
object's SHA-256 equals the source's, exactly one object exists, no multipart upload is left behind, and the bytes
sent beyond the file's size are bounded. Figures (bytes re-sent, time to recover) go to e2e/artifacts/metrics.json.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from wire.plan import MiB

from .conftest import (
    AppUnderTest,
    Browser,
    open_app,
    random_file,
    record_metric,
    screenshot,
    sha256_file,
    wait_for,
)
from .ui import card, notices, pick

PART = 8 * MiB
CONCURRENCY = 4
SLOW = 16e6  # bytes/s through the proxy: a 64 MiB file takes about 4 s, time enough to strike mid-upload


def start_upload(app: AppUnderTest, page: Page, source: Path, parts_first: int = 2) -> None:
    app.proxy.state.rate_bytes_per_s = SLOW
    pick(page, source)
    expect(card(page, source.name)).to_have_attribute("data-saved", "true", timeout=60_000)  # safe to leave
    wait_for(lambda: len(app.proxy.state.completed()) >= parts_first, 60, f"{parts_first} parts on S3")


def finish_and_check(app: AppUnderTest, page: Page, source: Path, name: str, struck_at: float,
                     resend_bound: int) -> dict[str, float]:
    upload = card(page, source.name)
    expect(upload).to_have_attribute("data-phase", "completed", timeout=180_000)
    recovered_s = time.monotonic() - struck_at
    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == [], "no multipart upload is left behind"
    wait_for(app.proxy.state.settled, 30, "the proxy to settle")
    sent = sum(p.received for p in app.proxy.state.snapshot())
    resent = sent - source.stat().st_size
    assert 0 <= resent <= resend_bound, f"{resent} bytes re-sent, bound {resend_bound}"
    figures = {"resent_bytes": resent, "resent_parts": round(resent / PART, 2), "complete_after_fault_s":
               round(recovered_s, 2)}
    record_metric(f"fault_{name}", figures)
    return figures


def test_browser_killed_mid_upload_resumes_after_relaunch(
    app: AppUnderTest, browser: Browser, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "killed.bin", 64 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    start_upload(app, page, source)
    killed = kill_chromium(browser.profile)
    assert killed, "a Chromium process was killed"
    struck = time.monotonic()
    browser.context = None  # its browser is gone; relaunch on the same profile, like a user after a crash
    wait_for(app.proxy.state.settled, 30, "the proxy to notice the dead browser")
    app.proxy.state.rate_bytes_per_s = None
    page = open_app(browser.launch(), app)
    finish_and_check(app, page, source, "browser_killed", struck, CONCURRENCY * PART)


def kill_chromium(profile: Path) -> list[int]:
    """SIGKILL every Chromium process of this profile (the browser and its children), like a crash."""
    killed = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "chrom" in cmdline and str(profile) in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
            except ProcessLookupError:
                pass
    return killed


def test_storage_restarted_mid_upload(app: AppUnderTest, browser: Browser, tmp_path: Path, seaweed) -> None:  # type: ignore[no-untyped-def]
    source = random_file(tmp_path / "storage-restart.bin", 64 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    start_upload(app, page, source)
    struck = time.monotonic()
    seaweed.restart()
    app.proxy.state.rate_bytes_per_s = None
    finish_and_check(app, page, source, "storage_restarted", struck, CONCURRENCY * PART * 3)


def test_presign_server_restarted_mid_upload(app: AppUnderTest, browser: Browser, tmp_path: Path) -> None:
    source = random_file(tmp_path / "server-restart.bin", 64 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    start_upload(app, page, source, parts_first=1)
    struck = time.monotonic()
    app.server.restart()
    finish_and_check(app, page, source, "server_restarted", struck, CONCURRENCY * PART)


def test_offline_for_ten_seconds(app: AppUnderTest, browser: Browser, tmp_path: Path) -> None:
    source = random_file(tmp_path / "offline.bin", 64 * MiB)
    context = browser.context
    assert context is not None
    page = open_app(context, app)
    start_upload(app, page, source)
    struck = time.monotonic()
    context.set_offline(True)
    expect(card(page, source.name).locator(".upload-status")).to_have_text("Waiting for network", timeout=10_000)
    screenshot(page, "waiting-for-network")
    time.sleep(10)  # the outage itself, not a wait for a condition
    context.set_offline(False)
    app.proxy.state.rate_bytes_per_s = None
    figures = finish_and_check(app, page, source, "offline_10s", struck, CONCURRENCY * PART)
    assert figures["complete_after_fault_s"] >= 10


def test_one_in_ten_part_puts_fails(make_app: Callable[..., AppUnderTest], browser: Browser, tmp_path: Path) -> None:
    app = make_app(part_size_bytes=5 * MiB)
    attempts = {"n": 0}

    def every_tenth(_put: object) -> int | None:
        attempts["n"] += 1
        if attempts["n"] % 10 == 3:
            return 503 if attempts["n"] % 20 == 3 else 500
        return None

    app.proxy.state.fault = every_tenth
    source = random_file(tmp_path / "flaky.bin", 100 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    pick(page, source)
    struck = time.monotonic()
    failures = lambda: len(app.proxy.state.injected)  # noqa: E731
    finish_and_check(app, page, source, "ten_percent_failures", struck, 4 * 5 * MiB)
    assert failures() >= 2, "faults were really injected"


def test_presigned_urls_expire_during_the_upload(
    make_app: Callable[..., AppUnderTest], browser: Browser, tmp_path: Path
) -> None:
    app = make_app(presign_ttl_seconds=3)
    source = random_file(tmp_path / "short-ttl.bin", 64 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    app.proxy.state.rate_bytes_per_s = 8e6  # about 8 s in all: each URL lives 3 s
    pick(page, source)
    struck = time.monotonic()
    finish_and_check(app, page, source, "short_url_ttl", struck, CONCURRENCY * PART * 2)
    assert time.monotonic() - struck > 3, "the upload outlived its first URLs"


def test_two_tabs_and_the_same_file_twice(app: AppUnderTest, browser: Browser, tmp_path: Path) -> None:
    source = random_file(tmp_path / "twice.bin", 64 * MiB)
    context = browser.context
    assert context is not None
    first = open_app(context, app)
    second = open_app(context, app)
    start_upload(app, first, source, parts_first=1)
    pick(second, source)  # the same file, dropped again in the other tab
    expect(notices(second)).to_contain_text("already in your uploads")
    struck = time.monotonic()
    expect(card(second, source.name)).to_have_count(1)
    expect(card(first, source.name)).to_have_count(1)
    app.proxy.state.rate_bytes_per_s = None
    finish_and_check(app, second, source, "two_tabs_same_file", struck, 0)
    assert len({p.upload_id for p in app.proxy.state.snapshot()}) == 1, "one multipart upload, not two"
    expect(card(first, source.name)).to_have_attribute("data-phase", "completed")


def test_a_byte_flipped_in_flight_is_refused_and_resent(app: AppUnderTest, browser: Browser, tmp_path: Path) -> None:
    corrupted: set[int] = set()

    def flip_part_three_once(put: object) -> str | None:
        number = getattr(put, "part_number", 0)
        if number == 3 and number not in corrupted:
            corrupted.add(number)
            return "corrupt"
        return None

    app.proxy.state.fault = flip_part_three_once
    source = random_file(tmp_path / "flipped.bin", 64 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    pick(page, source)
    struck = time.monotonic()
    finish_and_check(app, page, source, "byte_flipped", struck, PART)
    statuses = [p.status for p in app.proxy.state.snapshot() if p.part_number == 3]
    assert statuses[0] == 400 and statuses[-1] == 200, statuses


def test_a_captive_portal_answering_200_is_not_a_stored_part(app: AppUnderTest, browser: Browser,
                                                              tmp_path: Path) -> None:
    """A Wi-Fi login page answers every PUT with 200 and HTML: nothing counts as stored, the user is told, and once
    the portal is gone Retry finishes the upload with no part stored twice."""
    portal = {"up": True}
    app.proxy.state.fault = lambda _put: "portal" if portal["up"] else None
    source = random_file(tmp_path / "portal.bin", 32 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    pick(page, source)
    upload = card(page, source.name)
    expect(upload.locator(".upload-status")).to_have_text(
        "Action needed: the network is answering instead of the storage (captive portal or proxy?)", timeout=60_000
    )
    screenshot(page, "captive-portal")
    answered = len(app.proxy.state.injected)
    assert answered >= 4, "a run of portal answers, retried, before the user was told"
    assert app.proxy.state.completed() == [] and app.objects() == []
    expect(upload.locator(".upload-percent")).to_have_text("0%")  # nothing the portal said counts as progress

    portal["up"] = False  # the user logged in to the Wi-Fi
    struck = time.monotonic()
    upload.locator("button[data-action=retry]").click()
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    stored = app.proxy.state.completed()
    assert sorted(p.part_number for p in stored) == [1, 2, 3, 4], "each part stored once"
    record_metric("fault_captive_portal", {"portal_answers": answered, "resent_to_storage_bytes": sum(
        p.received for p in stored) - source.stat().st_size, "complete_after_retry_s": round(time.monotonic() - struck,
                                                                                             2)})


def test_answers_without_an_etag_are_retried_by_themselves(app: AppUnderTest, browser: Browser,
                                                            tmp_path: Path) -> None:
    """A proxy drops the ETag from two answers: those parts are sent again, and the object is exact."""
    attempts = {"n": 0}

    def second_and_fifth(_put: object) -> str | None:
        attempts["n"] += 1
        return "no-etag" if attempts["n"] in (2, 5) else None

    app.proxy.state.fault = second_and_fifth
    source = random_file(tmp_path / "no-etag.bin", 48 * MiB)
    assert browser.context is not None
    page = open_app(browser.context, app)
    pick(page, source)
    struck = time.monotonic()
    finish_and_check(app, page, source, "no_etag", struck, 2 * PART)
    assert [fault for _, fault in app.proxy.state.injected] == ["no-etag", "no-etag"]
    assert sorted(p.part_number for p in app.proxy.state.completed()) == list(range(1, 7))
