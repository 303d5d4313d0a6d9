"""The core journey in Firefox and in WebKit, with the Chromium tests' assertions (e2e/test_upload.py): the worker
boots from the memory snapshot, a file uploads with the exact bytes while the user moves between the app's pages and
tabs, and closing every tab mid-upload then opening the app again resumes without re-picking, re-sending at most the
parts that were in flight."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from browser_py.engine.view import LEAVE_BANNER
from tests.support.files import random_file, sha256_file
from tests.support.worker_diagnostics import worker_report
from wire.plan import MiB

from ..conftest import AppUnderTest, record_metric, wait_for
from ..ui import PICKER_DEEP, SHADOW
from .conftest import card, open_app, wait_for_card
from .drivers import EngineBrowser, EnginePage

PART = 8 * MiB
CONCURRENCY = 4  # the engine's default parts in flight

HEADING = "() => document.querySelector('[data-page-view]:not([hidden]) h1')?.textContent"
INSTANCE = "() => document.querySelector('#engine').dataset.instance"
LABELS = "() => window.__labels"
LIFETIME = "() => [document.querySelector('#engine').dataset.mode, document.querySelector('#engine').dataset.lifetime]"
BANNER = f"() => !{SHADOW}.querySelector('.banner').hidden && {SHADOW}.querySelector('.banner-text').textContent"
SCREEN = f"() => [document.querySelector('#engine')?.textContent, {SHADOW}?.querySelector('.notices')?.textContent]"


def wait_for_parts(app: AppUnderTest, page: EnginePage, name: str, count: int, what: str) -> None:
    """Until ``count`` parts are on S3; fails with what the card says if it stops first."""
    def enough() -> bool:
        found = card(page, name)
        assert found is None or found["phase"] != "failed", f"{name}: {found}"
        return len(app.proxy.state.completed()) >= count

    try:
        wait_for(enough, 60, what, interval=0.1)
    except AssertionError as error:
        screen = page.evaluate(SCREEN)
        raise AssertionError(f"{error}; the card: {card(page, name)}; engine, notices: {screen}") from None


def test_boots_from_the_snapshot_and_uploads_the_exact_bytes_across_pages_and_tabs(
    make_app: Callable[..., AppUnderTest], engine: EngineBrowser, tmp_path: Path
) -> None:
    app = make_app(leave_threshold_seconds=1)  # so the "you can leave" banner shows for this short upload
    source = random_file(tmp_path / "keep-going.bin", 40 * MiB)
    page = open_app(engine, app.url)
    boot = worker_report(page)["boot"]
    assert boot["mode"] == "snapshot", boot  # the memory snapshot is engine-independent wasm
    assert boot["fallback"] is None and boot["error"] is None, boot
    instance = page.evaluate(INSTANCE)
    # Neither engine keeps a SharedWorker past its last page: detected, so the banner promises only the next visit.
    assert page.evaluate(LIFETIME) == ["shared", "page"]

    app.proxy.state.rate_bytes_per_s = 8e6  # about 5 s: time to move around while it uploads
    page.evaluate("() => { window.__sameDocument = true; }")
    page.set_input_files(PICKER_DEEP, source)
    assert wait_for(lambda: page.evaluate(BANNER), 30, "the leave banner", interval=0.1) == LEAVE_BANNER
    wait_for_parts(app, page, "keep-going.bin", 1, "a first part on S3")

    page.click('nav a[data-page="projects"]')
    assert page.evaluate("() => location.pathname") == "/projects"
    assert page.evaluate(HEADING) == "Projects"
    parts_on_projects = len(app.proxy.state.completed())
    wait_for(lambda: len(app.proxy.state.completed()) > parts_on_projects, 30, "progress while on Projects")
    page.click('nav a[data-page="upload"]')
    assert page.evaluate(HEADING) == "Upload files"
    assert page.evaluate("() => window.__sameDocument") is True, "moving between pages never reloads the document"

    other = open_app(engine, app.url)  # a second tab joins the same worker and sees the same upload
    assert other.evaluate(INSTANCE) == instance
    wait_for_card(other, "keep-going.bin", lambda c: True, 30, "the upload's card in the second tab")  # its hello
    page.close()  # the first tab goes away; the other keeps the worker (and the upload) alive
    app.proxy.state.rate_bytes_per_s = None
    done = wait_for_card(other, "keep-going.bin", lambda c: c["phase"] == "completed", 120, "the upload to complete")
    assert (done["status"], done["percent"]) == ("Completed", "100%")
    assert other.evaluate(INSTANCE) == instance, "the worker never restarted"

    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == []
    assert sorted(p.part_number for p in app.proxy.state.completed()) == list(range(1, 6))
    assert not [label for label in other.evaluate(LABELS) if label.startswith("Resuming")]
    record_metric(f"{engine.name}_boot", {"version": engine.version, "ready_ms": boot["ready_ms"],
                                          "python_ms": boot["python_ms"]})


def test_closing_every_tab_mid_upload_resumes_on_the_next_visit(
    app: AppUnderTest, engine: EngineBrowser, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "resume-me.bin", 64 * MiB)
    app.proxy.state.rate_bytes_per_s = 12e6  # slow enough to close the tab between parts (about 5.6 s in all)
    page = open_app(engine, app.url)
    first_instance = page.evaluate(INSTANCE)
    page.set_input_files(PICKER_DEEP, source)
    wait_for_card(page, "resume-me.bin", lambda c: c["saved"] == "true", 60, "the file saved in the browser")
    wait_for_parts(app, page, "resume-me.bin", 2, "two parts on S3")
    page.close()  # every tab of the app is gone (a blank one keeps the browser): the SharedWorker ends with it
    closed_at = time.monotonic()
    # A PUT whose body had fully arrived may still land on S3 after the tab is gone: let the proxy settle first.
    wait_for(app.proxy.state.settled, 30, "the proxy to finish the requests of the closed tab")
    before = app.proxy.state.snapshot()
    confirmed_before = {p.part_number for p in before if p.status == 200}
    attempted_before = {p.part_number for p in before}
    assert len(confirmed_before) < 8, "the upload must not have finished before the tab closed"
    assert app.objects() == [], "nothing is completed while the tab is closed"
    assert len(app.multipart_uploads()) == 1
    app.proxy.state.rate_bytes_per_s = None

    page = open_app(engine, app.url)  # the next visit; no file is picked
    assert page.evaluate(INSTANCE) != first_instance, "a fresh worker, not the old one"
    wait_for_card(page, "resume-me.bin", lambda c: c["phase"] == "completed", 120, "the resumed upload to complete")
    reopen_to_done_s = time.monotonic() - closed_at
    labels = page.evaluate(LABELS)
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
    record_metric(
        f"{engine.name}_resume_after_close",
        {"parts_confirmed_before_close": len(confirmed_before), "resent_bytes": resent_bytes,
         "close_to_completed_s": round(reopen_to_done_s, 2)},
    )
