"""The page-facing API (profile, Service Worker script), the file pages notifications lead to, and key files."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from server.clock import utcnow
from server.models import ItemStatus, NotificationItem
from server.notify.keys import WEBHOOK_SECRET_FILE, load_vapid_keys, resolve_webhook_secret
from server.settings import REPO_ROOT
from tests.support.live_server import isolated_settings
from tests.support.notify import SmtpSink, wait_until
from tests.support.uploads import create_session

from .conftest import DatabaseOf, NotifyServer, complete_upload


def test_profile_defaults_updates_and_validation(notify_server: NotifyServer) -> None:
    server = notify_server()
    with server.client() as client, server.client() as other:
        assert client.get("/api/profile").json() == {
            "email": None,
            "email_confirmed": False,
            "email_notifications": True,
            "push_notifications": True,
            "push_subscriptions": 0,
        }
        assert client.put("/api/profile", json={"email": " ana@example.com "}).json()["email"] == "ana@example.com"
        for bad in [
            "ana",
            "ana@localhost",
            "a b@example.com",
            "ana@example.com\r\nBcc: x@example.com",
            "x" * 250 + "@e.com",
        ]:
            response = client.put("/api/profile", json={"email": bad})
            assert response.status_code == 422, bad
        assert client.put("/api/profile", json={"unknown": 1}).status_code == 422
        # Fields left out stay; null (or "") forgets the address.
        assert client.put("/api/profile", json={"push_notifications": False}).json()["email"] == "ana@example.com"
        assert client.put("/api/profile", json={"email": ""}).json()["email"] is None
        assert client.get("/api/profile").json()["push_notifications"] is False
        assert other.get("/api/profile").json()["email"] is None  # profiles are per (anonymous) user


def test_the_service_worker_is_served_from_the_root(notify_server: NotifyServer) -> None:
    server = notify_server(web_dir=REPO_ROOT / "web")
    response = httpx.get(server.base_url + "/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["service-worker-allowed"] == "/"
    assert response.headers["cache-control"] == "no-cache"
    assert 'addEventListener("push"' in response.text
    missing = notify_server()  # a web dir without sw.js
    assert httpx.get(missing.base_url + "/sw.js").status_code == 404


def test_a_file_page_shows_the_owner_their_upload_and_nobody_else(notify_server: NotifyServer) -> None:
    server = notify_server()
    with server.client() as owner, server.client() as stranger:
        done = complete_upload(owner, "<b>bold</b>.pdf", b"x" * 1500)
        pending = create_session(owner, 5, file_name="pending.txt")
        page = owner.get(f"/files/{done['session_id']}")
        assert page.status_code == 200
        assert "&lt;b&gt;bold&lt;/b&gt;.pdf" in page.text and "<b>bold" not in page.text
        assert "Uploaded in full" in page.text and "1.5 KB" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "Uploading" in owner.get(f"/files/{pending['session_id']}").text
        assert stranger.get(f"/files/{done['session_id']}").status_code == 404
        assert owner.get("/files/no-such-upload").status_code == 404
        listing = owner.get("/files").text
        assert done["session_id"] in listing and pending["session_id"] in listing
        assert done["session_id"] not in stranger.get("/files").text


def test_a_webhook_secret_is_generated_once_when_not_configured(tmp_path: Path) -> None:
    settings = isolated_settings(data_dir=tmp_path, webhook_url="http://127.0.0.1:1/hooks")
    secret = resolve_webhook_secret(settings)
    path = tmp_path / WEBHOOK_SECRET_FILE
    assert len(secret) >= 32 and path.read_text() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_webhook_secret(settings) == secret
    assert resolve_webhook_secret(settings.model_copy(update={"webhook_secret": "given"})) == "given"


def test_an_unusable_vapid_key_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="VAPID_PRIVATE_KEY is not a usable P-256 private key"):
        load_vapid_keys(isolated_settings(data_dir=tmp_path, vapid_private_key="bm90IGEga2V5"))


def test_a_notification_left_sending_by_a_dead_process_is_sent_after_its_lease(
    notify_server: NotifyServer, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    server = notify_server(outbox_dispatcher=False)
    database = database_of(server)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        session = complete_upload(client, "orphan.txt")
        owner = session["object_key"].split("/")[1]
    with database.sessions() as db:  # what a process killed while sending leaves behind
        db.add(
            NotificationItem(
                session_id=session["session_id"],
                user_id=owner,
                channel="email",
                status=ItemStatus.SENDING.value,
                claim_token="dead-1",
                claimed_until=utcnow() + timedelta(seconds=0.5),
            )
        )
        db.commit()
    server.stop()
    server.settings = server.settings.model_copy(update={"outbox_dispatcher": True})
    server.start()
    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "Uploaded: orphan.txt"

    def items() -> list[str] | None:
        with database.sessions() as db:
            rows = db.scalars(select(NotificationItem)).all()
            statuses = [r.status for r in rows]
            return statuses if all(s == ItemStatus.SENT.value for s in statuses) else None

    assert wait_until(items, 10, "the item sent") == [ItemStatus.SENT.value]  # the event did not add a second one
    assert len(smtp.messages) == 1
