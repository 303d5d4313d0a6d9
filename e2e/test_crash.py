"""A crash in the first seconds: the browser dies before its copy of the file is complete.

A file picked as the page opens (the engine still starting), the browser SIGKILLed as soon as S3 holds a part, then
relaunched on the same profile: the card shows the progress S3 holds and offers to choose the file again; another
file is refused with the reason on screen; the same file continues from S3's parts (none sent twice) and the object
has the exact bytes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browser_py.engine.upload import COPY_INCOMPLETE
from wire.plan import MiB
from wire.view import ACTION_TEXT

from .conftest import AppUnderTest, Browser, open_app, random_file, record_metric, screenshot, sha256_file, wait_for
from .test_faults import kill_chromium
from .ui import bar_drawn, card, notices, pick

# Large enough that S3 holds a part well before the browser's copy completes, even now that the copy is not starved
# (at 160 MiB the copy usually wins: bench/saved.py).
SIZE = 512 * MiB
PART = 8 * MiB


def choose_again(page: Page, name: str, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        card(page, name).get_by_role("button", name=ACTION_TEXT["choose"]).click()
    chooser.value.set_files(str(path))


def test_a_crash_before_the_copy_completed_continues_from_s3_once_the_file_is_chosen_again(
    app: AppUnderTest, browser: Browser, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "crash-early.bin", SIZE)
    other = random_file(tmp_path / "another.bin", SIZE)
    assert browser.context is not None
    page = browser.context.new_page()
    page.goto(app.url, wait_until="domcontentloaded")
    pick(page, source)  # picked as the page opens: the engine is still starting
    picked = time.monotonic()
    wait_for(lambda: app.proxy.state.completed(), 120, "S3 to hold a part", interval=0.005)
    assert kill_chromium(browser.profile), "a Chromium process was killed"
    killed_after = time.monotonic() - picked
    browser.context = None
    wait_for(app.proxy.state.settled, 30, "the proxy to notice the dead browser")
    held = {p.part_number for p in app.proxy.state.completed()}
    puts_before = len(app.proxy.state.snapshot())

    page = open_app(browser.launch(), app)
    upload = card(page, source.name)
    expect(upload).to_have_attribute("data-phase", re.compile("needs_file|uploading|resuming|completed"),
                                     timeout=60_000)
    assert upload.get_attribute("data-saved") == "false", "the copy had completed before the crash: nothing to test"
    expect(upload).to_have_attribute("data-phase", "needs_file")
    expect(upload.locator(".upload-status")).to_have_text(f"Action needed: {COPY_INCOMPLETE}")
    percent = round(100 * len(held) * PART / SIZE, 1)
    expect(upload.locator(".upload-percent")).to_have_text(f"{percent:g}%"), "the progress S3 holds"
    assert bar_drawn(upload) == pytest.approx(percent / 100, abs=0.005), "the bar is drawn to that percent"
    expect(upload.get_by_role("button", name=ACTION_TEXT["choose"])).to_be_visible()
    screenshot(page, "crash-early-choose-again")

    choose_again(page, source.name, other)
    expect(notices(page)).to_contain_text(
        f"{other.name} is not the file this upload was sending", timeout=30_000
    )
    expect(upload).to_have_attribute("data-phase", "needs_file")

    choose_again(page, source.name, source)
    expect(upload).to_have_attribute("data-phase", "completed", timeout=240_000)
    assert app.only_object_sha256() == sha256_file(source)
    assert app.multipart_uploads() == [], "no multipart upload is left behind"
    wait_for(app.proxy.state.settled, 30, "the proxy to settle")
    after = app.proxy.state.snapshot()[puts_before:]
    again = sorted(p.part_number for p in after if p.part_number in held)
    assert again == [], f"parts S3 held were sent again: {again}"
    resent = sum(p.received for p in app.proxy.state.snapshot()) - SIZE
    record_metric("crash_before_copy_completed", {
        "killed_after_pick_s": round(killed_after, 2), "parts_held": len(held), "resent_bytes": resent,
    })
    assert resent <= 4 * PART, f"{resent} bytes re-sent: at most the parts in flight at the crash"
