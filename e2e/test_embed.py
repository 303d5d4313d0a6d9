"""The uploader embedded in a host application (examples/host): the host's own login issues a JWT, the uploader is
mounted at /uploader, and <smartcat-uploader> sits in one of the host's pages, under the host's strict CSP.

In Chromium: sign in to the host, drop a file, move around the host's pages; another user signs in to the host in
the same browser profile (one engine, one OPFS): he sees none of the first user's uploads, cannot act on them, and
none of their parts is sent meanwhile; the first user's tab closes; she signs in again: the upload resumes by itself
and S3 holds the exact bytes, with only the parts in flight sent again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, expect

from wire.plan import MiB

from .conftest import ARTIFACTS, Browser, random_file, record_metric, sha256_file, wait_for
from .embed_host import Host, host_fixture, sign_in  # noqa: F401 - the example host fixture
from .test_lifetime import WITHOUT_EXTENDED_LIFETIME

SIZE = 48 * MiB  # six parts, four in flight at once: the last two are still going when the tab closes
PART = 8 * MiB
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def uploads_of(context: BrowserContext, host: Host) -> list[dict[str, object]]:
    """What the uploader's API lists for whoever this browser is signed in as (the host's cookie rides along)."""
    response = context.request.get(host.url + "/uploader/api/uploads")
    assert response.status == 200, response.text()
    listed: list[dict[str, object]] = response.json()
    return listed


def test_sign_in_drop_move_around_another_user_signs_in_then_alice_again_and_it_completes(
    host: Host, browser: Browser, tmp_path: Path
) -> None:
    context = browser.context
    assert context is not None
    context.add_init_script(WITHOUT_EXTENDED_LIFETIME)  # the worker ends with the last tab: the next visit resumes
    source = random_file(tmp_path / "manual-v4.bin", SIZE)
    host.proxy.state.rate_bytes_per_s = 6e6

    page = sign_in(context, host, "alice", "wonderland")
    expect(page.locator('smartcat-uploader[engine="ready"]')).to_be_visible(timeout=60_000)
    expect(page.locator("smartcat-uploader .empty")).to_be_visible()
    page.set_input_files("smartcat-uploader input.picker", str(source))
    upload = page.locator("smartcat-uploader .upload", has_text=source.name)
    expect(upload).to_have_attribute("data-saved", "true", timeout=60_000)
    wait_for(lambda: host.proxy.state.completed(), 60, "a part on S3")
    host.proxy.state.rate_bytes_per_s = 0.6e6  # the rest crawls: still going while we move around and switch users
    expect(upload.locator(".upload-percent")).not_to_have_text("0%")
    local_id = upload.get_attribute("data-local-id")
    page.screenshot(path=str(ARTIFACTS / "embed-desktop-uploading.png"))

    # Around the host's pages (full page loads), and back: the card is there, from the one engine of the origin.
    page.get_by_role("link", name="Projects").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.get_by_role("link", name="Upload", exact=True).click()
    expect(page.locator("smartcat-uploader .upload", has_text=source.name)).to_be_visible(timeout=60_000)

    # Alice's tab stays open (the engine keeps running) while, in another tab, she signs out and Bob signs in to
    # the host in the same browser profile. The engine asks who is signed in at Bob's hello: Alice's uploads are
    # put away (stopped, their cards gone from every tab) and Bob sees none of them.
    assert context.request.get(host.url + "/logout").ok
    bob_page = sign_in(context, host, "bob", "the-builder")
    expect(bob_page.locator('smartcat-uploader[engine="ready"]')).to_be_visible(timeout=60_000)
    expect(bob_page.locator("smartcat-uploader .empty")).to_be_visible()
    expect(page.locator("smartcat-uploader .upload")).to_have_count(0)  # gone from Alice's old tab too
    assert bob_page.locator("smartcat-uploader .upload").count() == 0
    page.close()  # Alice's tab closes mid-upload
    host.proxy.state.rate_bytes_per_s = None  # PUTs still under way end at once instead of crawling to their end
    wait_for(host.proxy.state.settled, 30, "Alice's PUTs to end")
    before = host.proxy.state.snapshot()
    confirmed_before = {p.part_number for p in before if p.status == 200}
    assert len(confirmed_before) < SIZE // PART, "the upload must still be going when Bob signs in"
    # Bob's page cannot act on Alice's upload through the client API: the engine holds only Bob's uploads now.
    for action in ("resume", "cancel", "dismiss"):
        bob_page.evaluate("([id, a]) => document.querySelector('smartcat-uploader').uploader.act(id, a)",
                          [local_id, action])
    expect(bob_page.get_by_text(f"no upload {local_id}").first).to_be_attached()
    assert uploads_of(context, host) == []  # the server lists Bob nothing of Alice's
    assert host.objects() == []
    assert len(host.proxy.state.snapshot()) == len(before), "no part of Alice's is sent while Bob is signed in"

    # Bob signs out and Alice signs in again in the same tab: her upload resumes by itself (no file picked) and
    # completes with the exact bytes, with none of the parts S3 held sent again.
    assert context.request.get(host.url + "/logout").ok
    bob_page.close()
    page = sign_in(context, host, "alice", "wonderland")
    upload = page.locator("smartcat-uploader .upload", has_text=source.name)
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    [key] = host.objects()
    assert host.object_sha256(key) == sha256_file(source)
    after = host.proxy.state.snapshot()[len(before):]
    assert not [p for p in after if p.status == 200 and p.part_number in confirmed_before], "no stored part re-sent"
    resent = sum(p.received for p in after) - (SIZE - len(confirmed_before) * PART)
    assert resent <= 0, f"{resent} bytes more than the missing parts"
    [mine] = uploads_of(context, host)
    assert mine["file_name"] == source.name and mine["status"] == "completed"
    page.screenshot(path=str(ARTIFACTS / "embed-desktop-completed.png"))
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no horizontal scrolling at 360 px"
    page.screenshot(path=str(ARTIFACTS / "embed-360px-completed.png"), full_page=True)
    for name in ("embed-desktop-uploading", "embed-360px-completed"):
        shutil.copyfile(ARTIFACTS / f"{name}.png", SCREENSHOTS / f"{name}.png")
    record_metric("embed_resume", {"parts_confirmed_at_close": len(confirmed_before), "bytes_resent": max(resent, 0)})

    # Alice's upload answers Bob 404, as a missing one would.
    assert context.request.get(host.url + "/logout").ok
    bob_page = sign_in(context, host, "bob", "the-builder")
    assert context.request.get(f"{host.url}/uploader/api/uploads/{mine['session_id']}").status == 404


def test_a_wrong_password_signs_nobody_in_and_the_uploader_refuses_strangers(host: Host) -> None:
    with httpx.Client(base_url=host.url) as client:
        refused = client.post("/login", data={"user": "alice", "password": "guess"})
        assert refused.status_code == 303 and refused.headers["location"] == "/login?error=1"
        assert "smartcat_token" not in client.cookies
        stranger = client.post("/uploader/api/uploads", json={"file_name": "a.pdf", "size": 1})
        assert stranger.status_code == 401 and "sign in again" in stranger.json()["detail"]
        assert client.get("/", follow_redirects=False).headers["location"] == "/login"

