"""The zero-wait journey as a new user lives it, with screenshots of each state (e2e/artifacts/*.png):
drop two large files, see them saved and queued, get told they can leave, pause and resume, go to another page,
close the tab, come back to "Resuming…", get the completion toast, and open the share link."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import expect

from wire.plan import MiB

from .conftest import AppUnderTest, Browser, open_app, random_file, screenshot, sha256_file, wait_for
from .test_lifetime import WITHOUT_EXTENDED_LIFETIME
from .ui import banner, card, pick, toasts


def test_two_files_banner_pause_leave_return_toast_and_link(
    make_app: Callable[..., AppUnderTest], browser: Browser, tmp_path: Path
) -> None:
    app = make_app(leave_threshold_seconds=2, parallel_uploads=1)
    first = random_file(tmp_path / "manual-de.pdf", 64 * MiB)
    second = random_file(tmp_path / "glossary.xlsx", 24 * MiB)
    app.proxy.state.rate_bytes_per_s = 4e6  # about 17 s for the first: a "long" upload at this test's 2 s threshold
    context = browser.context
    assert context is not None
    # This journey comes back after the worker ended with the tab (test_lifetime.py: with extendedLifetime it lives on)
    context.add_init_script(WITHOUT_EXTENDED_LIFETIME)
    page = open_app(context, app)
    pick(page, first, second)

    # Both cards at once; one uploads, the other waits its turn (PARALLEL_UPLOADS=1).
    expect(card(page, "manual-de.pdf")).to_be_visible()
    expect(card(page, "glossary.xlsx").locator(".upload-status")).to_have_text("Queued")
    expect(card(page, "manual-de.pdf")).to_have_attribute("data-phase", "uploading", timeout=30_000)
    leave = banner(page)
    expect(leave).to_be_visible(timeout=30_000)
    expect(leave).to_contain_text("Saved. You can keep working — we're uploading in the background.")
    expect(leave).to_contain_text("You can even close this tab; we'll pick up where we left off next time.")
    expect(page.locator("#indicator")).to_have_text(re.compile(r"2 uploads · \d+%"))
    expect(card(page, "manual-de.pdf").locator(".upload-eta")).to_have_text(re.compile(r"(about|a few)"))
    expect(card(page, "manual-de.pdf").locator(".upload-bytes")).to_contain_text(" of 67 MB")
    screenshot(page, "journey-1-uploading-with-banner")

    # Pause the first: the queued one starts meanwhile. Resume it again.
    card(page, "manual-de.pdf").get_by_role("button", name="Pause").click()
    expect(card(page, "manual-de.pdf").locator(".upload-status")).to_have_text("Paused (by you)")
    expect(card(page, "glossary.xlsx")).not_to_have_attribute("data-phase", "queued", timeout=30_000)
    screenshot(page, "journey-2-paused")
    card(page, "manual-de.pdf").get_by_role("button", name="Resume").click()

    # Follow the banner to another page of the app; the indicator is there too.
    page.get_by_role("link", name="Keep working in Projects").click()
    expect(page).to_have_url(app.server.base_url + "/projects")
    expect(page.locator("#indicator")).to_be_visible()
    screenshot(page, "journey-3-projects-with-indicator")

    # The share link works while uploading.
    wait_for(lambda: any(p.status == 200 for p in app.proxy.state.snapshot()), 30, "a part on S3")
    session_id = card(page, "manual-de.pdf").get_attribute("data-session-id")
    assert session_id
    status_page = context.new_page()
    status_page.goto(f"{app.server.base_url}/files/{session_id}")
    expect(status_page.locator("body")).to_contain_text("manual-de.pdf")
    expect(status_page.locator(".file-facts")).to_contain_text(re.compile(r"Uploaded so far\s*\d+%"))
    screenshot(status_page, "journey-4-status-page-uploading")
    status_page.close()

    # Close the tab mid-upload, come back: "Resuming…", then the completion toast.
    for name in ("manual-de.pdf", "glossary.xlsx"):
        expect(card(page, name)).to_have_attribute("data-saved", "true", timeout=60_000)
    page.close()
    wait_for(app.proxy.state.settled, 30, "the closed tab's requests to settle")
    app.proxy.state.rate_bytes_per_s = 20e6
    page = open_app(context, app)
    expect(toasts(page)).to_contain_text("has been uploaded", timeout=120_000)
    screenshot(page, "journey-5-completed-toast")
    for name in ("manual-de.pdf", "glossary.xlsx"):
        expect(card(page, name)).to_have_attribute("data-phase", "completed", timeout=120_000)
    labels = page.evaluate("window.__labels")
    assert any(label.startswith("Resuming upload… ") for label in labels), labels
    expect(page.locator("#indicator")).to_be_hidden()

    # After completion the share link leads to the file.
    status_page = context.new_page()
    status_page.goto(f"{app.server.base_url}/files/{session_id}")
    expect(status_page.locator("body")).to_contain_text("Uploaded in full")
    download = status_page.get_by_role("link", name="Download manual-de.pdf")
    href = download.get_attribute("href") or ""
    fetched = httpx.get(href, timeout=60)  # the presigned GET, straight from S3
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == sha256_file(first)
    assert "manual-de.pdf" in fetched.headers.get("content-disposition", "")
    screenshot(status_page, "journey-6-status-page-completed")
    keys = app.objects()
    assert len(keys) == 2
    shas = set()
    for key in keys:
        body = app.s3.get_object(Bucket=app.bucket, Key=key)["Body"].read()
        shas.add(hashlib.sha256(body).hexdigest())
    assert shas == {sha256_file(first), sha256_file(second)}


def test_action_needed_and_narrow_screen(make_app: Callable[..., AppUnderTest], browser: Browser,
                                         tmp_path: Path) -> None:
    app = make_app()
    app.proxy.state.fault = lambda put: 400 if getattr(put, "part_number", 0) == 2 else None  # refused for good
    source = random_file(tmp_path / "contract.docx", 20 * MiB)
    context = browser.context
    assert context is not None
    page = open_app(context, app)
    page.set_viewport_size({"width": 360, "height": 740})
    pick(page, source)
    upload = card(page, "contract.docx")
    expect(upload).to_have_attribute("data-phase", "failed", timeout=60_000)
    expect(upload.locator(".upload-status")).to_contain_text("Action needed: storage refused the upload")
    expect(upload.get_by_role("button", name="Retry")).to_be_visible()
    # Keyboard: the Retry button is reachable and works with Enter.
    upload.get_by_role("button", name="Retry").focus()
    screenshot(page, "journey-7-action-needed-360px")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no horizontal scrolling at 360 px"
    app.proxy.state.fault = None
    started = time.monotonic()
    page.keyboard.press("Enter")
    expect(upload).to_have_attribute("data-phase", "completed", timeout=60_000)
    assert time.monotonic() - started < 60
    assert app.only_object_sha256() == sha256_file(source)
