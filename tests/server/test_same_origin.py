"""Part URLs on the app's origin (PART_URL_BASE) through a real nginx, and completing from what S3 lists (what the
Service Worker asks for when the browser's Background Fetch ends)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from server.__main__ import hand_off_note
from server.db import Database
from server.models import OutboxEvent
from server.settings import Settings
from tests.server.test_checksums import b64sha, sign
from tests.support.live_server import MakeLiveServer, isolated_settings
from tests.support.proxied import ProxiedServer, start_proxied
from tests.support.seaweed import SeaweedService
from tests.support.uploads import create_session, part_bytes
from wire.plan import MiB
from wire.view import background_title

PART = 5 * MiB


@pytest.fixture
def proxied(make_live_server: MakeLiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedServer]:
    stack = start_proxied(make_live_server, tmp_path_factory.mktemp("nginx"), require_checksums=True)
    try:
        yield stack
    finally:
        stack.nginx.stop()


def _put(url: str, chunk: bytes) -> httpx.Response:
    return httpx.put(url, content=chunk, headers={"x-amz-checksum-sha256": b64sha(chunk)})


def test_parts_go_through_the_app_origin_and_finish_completes_from_storage(
    proxied: ProxiedServer, seaweed: SeaweedService
) -> None:
    data = os.urandom(2 * PART + 4321)
    settings = proxied.server.settings
    with httpx.Client(base_url=proxied.origin, timeout=30) as client:
        page = client.get("/")
        csp = page.headers["content-security-policy"]
        connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src"))
        assert seaweed.endpoint_url not in connect, "the browser never talks to the store's own origin"
        session = create_session(client, len(data), part_size=PART, checksum_algorithm="SHA256")
        sid, token = session["session_id"], session["upload_token"]
        parts = {n: part_bytes(data, PART, n) for n in (1, 2, 3)}
        urls = sign(client, sid, parts)
        assert all(url.startswith(proxied.origin + "/store/" + settings.s3_bucket + "/") for url in urls.values())
        for n in (1, 2):
            assert _put(urls[n], parts[n]).status_code == 200
        # A part missing: nothing is assembled, and the answer names it.
        early = client.post(f"/api/uploads/{sid}/finish", json={"parts": [{"part_number": 3, "status": 0}]})
        assert early.status_code == 409 and early.json()["detail"]["missing"] == [3]
        unfinished = "Not finished: open Smartcat to send the rest of file.bin"
        assert early.json()["detail"]["title"] == unfinished, "the browser's UI ends with the server's words"
        assert _put(handed_off_url(client, sid, parts[3], settings), parts[3]).status_code == 200
        # The Service Worker's report: by the upload token (its cookie may be gone), ETags for information only.
        report = {"parts": [{"part_number": n, "status": 200, "etag": '"whatever"'} for n in (1, 2, 3)]}
        with httpx.Client(base_url=proxied.origin, timeout=30) as worker:
            done = worker.post(f"/api/uploads/{sid}/finish", json=report, headers={"X-Upload-Token": token})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        assert done.json()["title"] == "Upload complete: file.bin"
        # Idempotent with the engine's own complete, and with itself.
        again = client.post(f"/api/uploads/{sid}/complete", json={"parts": [{"part_number": 1, "etag": "x"}]})
        assert again.status_code == 200 and again.json()["etag"] == done.json()["etag"]
        assert client.post(f"/api/uploads/{sid}/finish", json={}).json()["etag"] == done.json()["etag"]
    stored = seaweed.client.get_object(Bucket=settings.s3_bucket, Key=session["object_key"])["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    assert proxied.server.app is not None
    database: Database = proxied.server.app.state.database
    with database.sessions() as db:
        events = [e.type for e in db.scalars(select(OutboxEvent).where(OutboxEvent.session_id == sid))]
    assert events == ["upload_completed"], "the completion notification goes out once"


def test_finish_is_refused_to_anyone_else(proxied: ProxiedServer) -> None:
    with httpx.Client(base_url=proxied.origin, timeout=30) as owner:
        session = create_session(owner, PART, part_size=PART, checksum_algorithm="SHA256")
    with httpx.Client(base_url=proxied.origin, timeout=30) as stranger:
        answer = stranger.post(f"/api/uploads/{session['session_id']}/finish", json={})
        assert answer.status_code == 404
        foreign = stranger.post(
            f"/api/uploads/{session['session_id']}/finish", json={}, headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403


def test_a_part_url_base_with_a_query_is_refused() -> None:
    with pytest.raises(ValidationError, match="PART_URL_BASE"):
        isolated_settings(part_url_base="https://app.example/store?x=1")
    assert isolated_settings(part_url_base="https://app.example/store/").part_url_base == "https://app.example/store"


def handed_off_url(client: httpx.Client, session_id: str, data: bytes, settings: Settings) -> str:
    """Part 3's URL as the engine asks for it for a hand-off: Background Fetch sends the whole queue with no page
    open, long after signing, so it lives BACKGROUND_PRESIGN_TTL_SECONDS; it still writes only that part's bytes."""
    asked = {"parts": [{"part_number": 3, "checksum_sha256": b64sha(data)}]}
    lifetimes = {}
    for background in (False, True):
        answer = client.post(f"/api/uploads/{session_id}/urls", json={**asked, "background": background}).json()
        lifetimes[background] = round(answer["expires_at"] - answer["server_now"])
        (url,) = (u["url"] for u in answer["urls"])
        assert f"X-Amz-Expires={lifetimes[background]}" in url, "the store enforces the same lifetime"
    assert lifetimes == {False: settings.presign_ttl_seconds, True: settings.background_presign_ttl_seconds}
    assert settings.background_presign_ttl_seconds > settings.presign_ttl_seconds
    other = os.urandom(len(data))
    assert _put(url, other).status_code in (400, 403), "other bytes (even with their own checksum) are refused"
    assert httpx.put(url, content=other, headers={"x-amz-checksum-sha256": b64sha(data)}).status_code == 400
    return url


def test_long_lived_urls_only_where_the_browser_can_send_them() -> None:
    """The hand-off (and its long-lived URLs) only when part URLs are on the app's origin; at most SigV4's 7 days."""
    app = "http://127.0.0.1:8000"
    assert isolated_settings(public_origin=app, part_url_base=app + "/store").background_hand_off
    assert not isolated_settings(public_origin=app, part_url_base="http://127.0.0.1:8333").background_hand_off
    assert not isolated_settings(public_origin=app).background_hand_off
    assert isolated_settings(background_presign_ttl_seconds=7 * 24 * 3600).background_presign_ttl_seconds == 604800
    with pytest.raises(ValidationError, match="background_presign_ttl_seconds"):
        isolated_settings(background_presign_ttl_seconds=7 * 24 * 3600 + 1)


@pytest.mark.parametrize(
    ("completed", "scan", "title"),
    [
        (True, None, "Upload complete: a.docx"),
        (True, "clean", "Upload complete: a.docx"),
        (True, "pending", "Uploaded, checking for viruses: a.docx"),
        (True, "infected", "Blocked: malware found (Eicar-Test-Signature): a.docx"),
        (False, None, "Not finished: open Smartcat to send the rest of a.docx"),
    ],
)
def test_what_the_browsers_background_fetch_ui_ends_with(completed: bool, scan: str | None, title: str) -> None:
    """Worded in Python (wire.view.BACKGROUND_TEXT), shown as is by the Service Worker: never "complete" for a file
    the scan holds or blocked."""
    assert background_title("a.docx", completed, scan, "Eicar-Test-Signature") == title


def test_the_server_says_at_start_whether_the_hand_off_is_on() -> None:
    """``make run`` serves the app without a proxy in front: the hand-off is off there, and it says so and how."""
    app = "http://127.0.0.1:8000"
    assert "off (part URLs go straight to the store" in hand_off_note(isolated_settings(public_origin=app))
    elsewhere = isolated_settings(public_origin=app, part_url_base="http://127.0.0.1:8333")
    assert "is not on PUBLIC_ORIGIN" in hand_off_note(elsewhere)
    on = isolated_settings(public_origin=app, part_url_base=app + "/store")
    assert hand_off_note(on) == f"Background Fetch hand-off: on (part URLs under {app}/store)"
