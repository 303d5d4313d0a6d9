"""The React example (clients/react/example, built here with Vite from the lock file) in the example host's /react/
page: <Uploader/> renders the element, useUploader() renders the host's own list, both from the one engine. The file
is picked by keyboard alone, and what a screen reader gets (progress bar, live region) is checked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from wire.plan import MiB

from .conftest import ROOT, Browser, random_file, sha256_file
from .embed_host import Host, host_fixture, sign_in  # noqa: F401 - the example host fixture

REACT = ROOT / "clients" / "react"


@pytest.fixture(scope="session")
def react_example() -> Path:
    """Build the example as a host would (npm ci from the lock when needed, then vite build)."""
    if not (REACT / "node_modules" / "vite").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REACT, check=True)
    subprocess.run(["npm", "run", "--silent", "build"], cwd=REACT, check=True)
    return REACT / "example" / "dist"


def test_the_react_example_uploads_and_the_hook_follows(
    react_example: Path, host: Host, browser: Browser, tmp_path: Path
) -> None:
    assert browser.context is not None
    source = random_file(tmp_path / "glossary.bin", 4 * MiB)
    page = sign_in(browser.context, host, "alice", "wonderland")
    page.goto(host.url + "/react/")
    expect(page.locator('smartcat-uploader[engine="ready"]')).to_be_visible(timeout=60_000)
    expect(page.locator('section[data-engine="ready"]')).to_be_visible()  # the hook heard the engine too
    # Playwright intercepts file choosers only while the page has a "filechooser" listener, and it turns that on
    # without waiting (a message with no answer): a listener added just before the key press can miss the chooser
    # the press opens. One added now is in place long before Space (the round trips below come after it).
    page.on("filechooser", lambda _: None)
    # By keyboard alone: Tab reaches the drop zone's file input (after the host's links) and Space opens the picker.
    focused = "() => document.activeElement?.shadowRoot?.activeElement?.className ?? null"
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate(focused) == "picker":
            break
    assert page.evaluate(focused) == "picker", "Tab never reached the drop zone"
    with page.expect_file_chooser(timeout=30_000) as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(source))

    # The hook's own list (rendered by React) and the element's card both reach Completed; the callback fired.
    expect(page.locator(".mine li", has_text=source.name)).to_have_attribute("data-phase", "completed",
                                                                            timeout=120_000)
    expect(page.locator("smartcat-uploader .upload", has_text=source.name)).to_have_attribute("data-phase",
                                                                                              "completed")
    expect(page.locator(".done")).to_contain_text(source.name)
    # What a screen reader is given: the bar's role and value, and the state change read out by the live region.
    expect(page.get_by_role("progressbar", name=f"{source.name}: 100%")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("smartcat-uploader .announcer")).to_have_text(f"{source.name}: Completed")
    [key] = host.objects()
    assert host.object_sha256(key) == sha256_file(source)

