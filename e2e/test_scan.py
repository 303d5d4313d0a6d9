"""Malware scanning seen from the browser (Chromium), against a real clamd with the EICAR test signature.

One browser and one app for the three stories, to keep it lean: an EICAR upload ends "Blocked: malware found (…)" on
its card with no link, its status page says so and offers no download; a clean file goes "Checking for viruses…" →
"Completed" with its link; and clamd restarting while it scans a file loses nothing: the card waits, then shows the
one verdict the upload gets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import expect
from sqlalchemy import select

from server.db import Database
from server.models import OutboxEvent, UploadSession
from tests.support.clamd import EICAR_SIGNATURE, ClamdService, SlowClamd, eicar

from .conftest import AppUnderTest, Browser, open_app, screenshot, wait_for
from .ui import card, notices, pick

BLOCKED = f"Blocked: malware found ({EICAR_SIGNATURE})"
CHECKING = "Checking for viruses…"


def _row(app: AppUnderTest, session_id: str) -> UploadSession:
    assert app.server.app is not None
    database: Database = app.server.app.state.database
    with database.sessions() as db:
        row = db.get(UploadSession, session_id)
        assert row is not None
        return row


def _events(app: AppUnderTest, session_id: str) -> list[str]:
    assert app.server.app is not None
    database: Database = app.server.app.state.database
    with database.sessions() as db:
        rows = db.scalars(select(OutboxEvent).where(OutboxEvent.session_id == session_id).order_by(OutboxEvent.id))
        return [json.loads(row.payload)["type"] for row in rows]


def test_scanned_uploads_in_the_browser(
    make_app: Callable[..., AppUnderTest], browser: Browser, tmp_path: Path
) -> None:
    clamd = ClamdService(tmp_path / "clamd")
    clamd.prepare()
    clamd.start()
    # Answers held a moment, so "Checking for viruses…" is on screen long enough to be seen; then a restart.
    slow = SlowClamd(clamd.port, delay=1.5).start()
    try:
        app = make_app(
            scan="clamd",
            clamd_port=slow.port,
            outbox_poll_seconds=0.5,
            outbox_retry_base_seconds=0.2,
            outbox_retry_max_seconds=0.5,
        )
        assert browser.context is not None
        page = open_app(browser.context, app)

        # A clean file: checked, then completed with its link.
        clean = tmp_path / "clean.bin"
        clean.write_bytes(os.urandom(3 * 1024 * 1024))
        pick(page, clean)
        upload = card(page, "clean.bin")
        expect(upload).to_have_attribute("data-phase", "scanning", timeout=120_000)
        expect(upload.locator(".upload-status")).to_have_text(CHECKING)
        expect(upload.locator('[data-action="copy"]')).to_have_count(0)
        expect(upload).to_have_attribute("data-phase", "completed", timeout=60_000)
        expect(upload.locator(".upload-status")).to_have_text("Completed")
        expect(upload.locator('[data-action="copy"]')).to_have_count(1)
        labels = page.evaluate("window.__labels")
        assert labels.index(CHECKING) < labels.index("Completed"), labels
        expect(page.locator(".toast", has_text="clean.bin has been uploaded")).to_have_count(1)

        # EICAR: blocked on the card, on its page, and never downloadable.
        bad = tmp_path / "eicar.bin"
        bad.write_bytes(eicar())
        pick(page, bad)
        upload = card(page, "eicar.bin")
        expect(upload).to_have_attribute("data-phase", "blocked", timeout=120_000)
        expect(upload.locator(".upload-status")).to_have_text(BLOCKED)
        expect(upload.locator('[data-action="copy"]')).to_have_count(0)
        expect(notices(page).locator("li", has_text=f"eicar.bin — {BLOCKED}")).to_have_count(1)
        expect(page.locator(".toast", has_text="eicar.bin has been uploaded")).to_have_count(0)
        screenshot(page, "scan-blocked")
        sid = upload.get_attribute("data-session-id")
        assert sid
        status_page = browser.context.new_page()
        status_page.goto(f"{app.server.base_url}/files/{sid}")
        expect(status_page.locator("main")).to_contain_text(BLOCKED)
        expect(status_page.locator("a.download")).to_have_count(0)
        status_page.close()
        key = _row(app, sid).object_key
        assert httpx.get(f"{app.proxy.url}/{app.bucket}/{key}").status_code == 403, "S3 hands nothing out unsigned"
        assert _events(app, sid) == ["upload_blocked"]

        # clamd restarts while it scans: the scan is retried, the card waits, and the verdict comes once.
        slow.delay = 300.0
        held = slow.held
        again = tmp_path / "eicar-again.bin"
        again.write_bytes(eicar())
        pick(page, again)
        upload = card(page, "eicar-again.bin")
        wait_for(lambda: slow.held > held, 120, "clamd's answer for the third file")
        clamd.stop()
        slow.drop()
        sid = upload.get_attribute("data-session-id")
        assert sid
        wait_for(lambda: _row(app, sid).scan_attempts >= 1, 30, "the failed scan to be counted")
        expect(upload.locator(".upload-status")).to_have_text(CHECKING)
        slow.delay = 0.0
        clamd.start()
        expect(upload).to_have_attribute("data-phase", "blocked", timeout=60_000)
        expect(upload.locator(".upload-status")).to_have_text(BLOCKED)
        row = _row(app, sid)
        assert (row.scan_status, row.scan_signature) == ("infected", EICAR_SIGNATURE)
        wait_for(lambda: _events(app, sid), 15, "the event")
        assert _events(app, sid) == ["upload_blocked"], "one verdict, announced once"
    finally:
        slow.stop()
        clamd.stop()
