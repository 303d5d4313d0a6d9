"""The foundation, end to end in Chromium: pick a file, upload it from OPFS by presigned multipart, survive closing
every tab, keep going while the user moves around the app."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from wire.plan import MiB

from .conftest import AppUnderTest, Browser, open_app, random_file, record_metric, screenshot, sha256_file, wait_for
from .test_lifetime import WITHOUT_EXTENDED_LIFETIME
from .ui import bar_drawn, card, pick

PART = 8 * MiB
CONCURRENCY = 4  # the engine's default parts in flight


def test_a_64_mib_file_uploads_with_the_exact_bytes(app: AppUnderTest, browser: Browser, tmp_path: Path) -> None:
    source = random_file(tmp_path / "report-64mib.bin", 64 * MiB)
    assert browser.context is not None
    started = time.monotonic()
    page = open_app(browser.context, app)
    ready_s = time.monotonic() - started
    boot_ms = int(page.get_attribute("#engine", "data-boot-ms") or 0)

    picked = time.monotonic()
    picked_wall = time.time()
    pick(page, source)
    upload = card(page, "report-64mib.bin")
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    elapsed = time.monotonic() - picked
    expect(upload.locator(".upload-status")).to_have_text("Completed")
    expect(upload.locator(".upload-percent")).to_have_text("100%")
    assert bar_drawn(upload) == pytest.approx(1.0), "the bar is drawn full"

    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    assert sorted(p.part_number for p in app.proxy.state.completed()) == list(range(1, 9))
    labels = page.evaluate("window.__labels")
    assert "Saving to this browser" in labels or "Starting upload" in labels or "Uploading" in labels
    screenshot(page, "upload-completed")
    record_metric(
        "upload_64mib",
        {"worker_boot_ms": boot_ms, "page_ready_s": round(ready_s, 2), "pick_to_completed_s": round(elapsed, 2),
         "pick_to_first_put_ms": round(1000 * (min(p.started for p in app.proxy.state.snapshot()) - picked_wall)),
         "mb_per_s_incl_staging": round(64 * MiB / 1e6 / elapsed, 1)},
    )


def test_closing_every_tab_mid_upload_resumes_on_the_next_visit(
    app: AppUnderTest, browser: Browser, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "resume-me.bin", 64 * MiB)
    app.proxy.state.rate_bytes_per_s = 12e6  # slow enough to close the tab between parts (about 5.6 s in all)
    context = browser.context
    assert context is not None
    context.add_init_script(WITHOUT_EXTENDED_LIFETIME)  # the worker ends with the last tab (see test_lifetime.py)
    page = open_app(context, app)
    first_instance = page.get_attribute("#engine", "data-instance")
    pick(page, source)
    expect(card(page, "resume-me.bin")).to_have_attribute("data-saved", "true", timeout=60_000)
    wait_for(lambda: len(app.proxy.state.completed()) >= 2, 60, "two parts on S3")
    page.close()  # every tab of the app is gone: the SharedWorker ends with it
    closed_at = time.monotonic()
    assert not context.pages
    # A PUT whose body had fully arrived may still land on S3 after the tab is gone: let the proxy settle first.
    wait_for(app.proxy.state.settled, 30, "the proxy to finish the requests of the closed tab")
    before = app.proxy.state.snapshot()
    confirmed_before = {p.part_number for p in before if p.status == 200}
    attempted_before = {p.part_number for p in before}
    assert len(confirmed_before) < 8, "the upload must not have finished before the tab closed"
    assert app.objects() == [], "nothing is completed while the tab is closed"
    assert len(app.multipart_uploads()) == 1
    app.proxy.state.rate_bytes_per_s = None

    page = open_app(context, app)  # the next visit; no file is picked
    assert page.get_attribute("#engine", "data-instance") != first_instance, "a fresh worker, not the old one"
    upload = card(page, "resume-me.bin")
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    reopen_to_done_s = time.monotonic() - closed_at
    labels = page.evaluate("window.__labels")
    assert any(label.startswith("Resuming upload… ") and label.endswith("% complete") for label in labels), labels

    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    after = app.proxy.state.snapshot()[len(before):]
    sent_after = [p for p in after if p.status == 200]
    assert not [p for p in sent_after if p.part_number in confirmed_before], "confirmed parts are never re-sent"
    resent = [p for p in sent_after if p.part_number in attempted_before]
    resent_bytes = sum(p.received for p in resent)
    assert resent_bytes <= CONCURRENCY * PART, "only the parts in flight at close are sent again"
    assert {p.part_number for p in sent_after} == set(range(1, 9)) - confirmed_before
    screenshot(page, "resumed-completed")
    record_metric(
        "resume_after_close",
        {"parts_confirmed_before_close": len(confirmed_before), "parts_in_flight_at_close":
         len(attempted_before - confirmed_before), "resent_bytes": resent_bytes,
         "close_to_completed_s": round(reopen_to_done_s, 2)},
    )


def test_upload_keeps_going_across_app_pages_and_other_tabs(
    app: AppUnderTest, browser: Browser, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "keep-going.bin", 48 * MiB)
    app.proxy.state.rate_bytes_per_s = 12e6  # about 4 s: time to move around while it uploads
    context = browser.context
    assert context is not None
    page = open_app(context, app)
    instance = page.get_attribute("#engine", "data-instance")
    page.evaluate("window.__sameDocument = true")
    pick(page, source)
    wait_for(lambda: len(app.proxy.state.completed()) >= 1, 60, "a first part on S3")

    page.get_by_role("link", name="Projects").click()
    expect(page).to_have_url(app.server.base_url + "/projects")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    parts_on_projects = len(app.proxy.state.completed())
    wait_for(lambda: len(app.proxy.state.completed()) > parts_on_projects, 30, "progress while on Projects")
    page.get_by_role("link", name="Upload", exact=True).click()
    expect(page.get_by_role("heading", name="Upload files")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True, "moving between app pages never reloads the document"

    other = open_app(context, app)  # a second tab joins the same worker and sees the same upload
    assert other.get_attribute("#engine", "data-instance") == instance
    expect(card(other, "keep-going.bin")).to_be_visible()
    page.close()  # the first tab goes away; the other one keeps the worker (and the upload) alive
    upload = card(other, "keep-going.bin")
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    assert other.get_attribute("#engine", "data-instance") == instance, "the worker never restarted"
    assert app.only_object_sha256() == sha256_file(source)
    assert not [label for label in other.evaluate("window.__labels") if label.startswith("Resuming")]
