"""Web Push up to the push service boundary: a push service in the test checks VAPID and decrypts the payload."""

from __future__ import annotations

import stat
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from server.models import ItemStatus, NotificationItem, PushSubscription
from server.notify.keys import VAPID_KEY_FILE
from server.notify.webpush import endpoint_allowed
from tests.support.notify import PushService, b64url, wait_until

from .conftest import DatabaseOf, NotifyServer, complete_upload


def _subscribe(client: Any, push_service: PushService, name: str) -> None:
    response = client.post("/api/notifications/push-subscriptions", json=push_service.subscription(name))
    assert response.status_code == 200, response.text


def test_push_is_signed_with_vapid_and_encrypted_for_the_subscription(
    notify_server: NotifyServer, push_service: PushService
) -> None:
    server = notify_server()
    with server.client() as client:
        push_service.vapid_public_key = client.get("/api/notifications/vapid-public-key").json()["public_key"]
        _subscribe(client, push_service, "laptop")
        session = complete_upload(client, "Quarterly report.pdf", b"x" * 2_500_000)

    [push] = push_service.wait_for(1)
    assert push.subscription == "laptop"
    assert push.claims["sub"] == "mailto:uploads@localhost"
    assert push.payload["title"] == "Upload complete"
    assert push.payload["body"] == "Quarterly report.pdf (2.5 MB) is uploaded."
    assert push.payload["url"] == f"/files/{session['session_id']}"
    assert push.payload["files"] == [
        {"session_id": session["session_id"], "file_name": "Quarterly report.pdf", "size": 2_500_000}
    ]
    assert push.headers["ttl"] == "86400"


def test_every_browser_of_the_user_gets_the_push(notify_server: NotifyServer, push_service: PushService) -> None:
    server = notify_server()
    with server.client() as client:
        _subscribe(client, push_service, "laptop")
        _subscribe(client, push_service, "phone")
        complete_upload(client, "a.txt")
    pushes = push_service.wait_for(2)
    assert sorted(p.subscription for p in pushes) == ["laptop", "phone"]


def test_an_expired_subscription_is_deleted(
    notify_server: NotifyServer, push_service: PushService, database_of: DatabaseOf
) -> None:
    push_service.statuses.append(410)
    server = notify_server()
    database = database_of(server)
    with server.client() as client:
        _subscribe(client, push_service, "old-browser")
        complete_upload(client, "a.txt")

    def settled() -> str | None:
        with database.sessions() as db:
            item = db.scalar(select(NotificationItem))
            return item.status if item and item.status in (ItemStatus.SKIPPED, ItemStatus.SENT) else None

    assert wait_until(settled, 10, "the push item to settle") == ItemStatus.SKIPPED.value
    with database.sessions() as db:
        assert db.scalars(select(PushSubscription)).all() == []
    assert push_service.pushes == []


def test_a_push_service_error_is_retried(
    notify_server: NotifyServer, push_service: PushService, database_of: DatabaseOf
) -> None:
    push_service.statuses.extend([500, 503])
    server = notify_server()
    database = database_of(server)
    with server.client() as client:
        _subscribe(client, push_service, "laptop")
        complete_upload(client, "a.txt")
    [push] = push_service.wait_for(1)
    assert push.payload["title"] == "Upload complete"
    assert len(push_service.requests) == 3

    def attempts() -> int | None:
        with database.sessions() as db:
            item = db.scalar(select(NotificationItem))
            return item.attempts if item and item.status == ItemStatus.SENT.value else None

    assert wait_until(attempts, 10, "the item marked sent") == 2


def test_a_push_refused_for_good_is_not_retried(
    notify_server: NotifyServer, push_service: PushService, database_of: DatabaseOf
) -> None:
    push_service.statuses.append(400)
    server = notify_server()
    database = database_of(server)
    with server.client() as client:
        _subscribe(client, push_service, "laptop")
        complete_upload(client, "a.txt")

    def status() -> str | None:
        with database.sessions() as db:
            item = db.scalar(select(NotificationItem))
            return item.status if item and item.status not in (ItemStatus.PENDING, ItemStatus.SENDING) else None

    assert wait_until(status, 10, "the item to settle") == ItemStatus.FAILED.value
    assert len(push_service.requests) == 1


def test_vapid_keys_are_generated_once_and_the_public_key_is_served(notify_server: NotifyServer) -> None:
    server = notify_server()
    key_file = server.settings.data_dir / VAPID_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    expected = b64url(
        private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    with server.client() as client:
        assert client.get("/api/notifications/vapid-public-key").json() == {"public_key": expected}
    server.restart()  # the same key after a restart: existing subscriptions stay valid
    with server.client() as client:
        assert client.get("/api/notifications/vapid-public-key").json() == {"public_key": expected}


def test_a_configured_vapid_key_is_used(notify_server: NotifyServer) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    server = notify_server(vapid_private_key=b64url(raw))
    expected = b64url(
        private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    with server.client() as client:
        assert client.get("/api/notifications/vapid-public-key").json()["public_key"] == expected
    assert not (server.settings.data_dir / VAPID_KEY_FILE).exists()


BAD_SUBSCRIPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"endpoint": "https://evil.example.com/push/1"}, "not a known push service"),
    ({"endpoint": "http://fcm.googleapis.com/fcm/send/1"}, "not a known push service"),
    ({"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "p256dh must be 65 bytes"),
    ({"keys": {"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": b64url(b"a" * 16)}}, "not a P-256 point"),
    ({"keys": {"p256dh": None, "auth": b64url(b"a" * 16)}}, "p256dh"),
]


def test_subscriptions_are_validated(notify_server: NotifyServer, push_service: PushService) -> None:
    server = notify_server()
    with server.client() as client:
        for change, words in BAD_SUBSCRIPTIONS:
            good = push_service.subscription("x")
            response = client.post(
                "/api/notifications/push-subscriptions", json={**good, "keys": {**good["keys"]}, **change}
            )
            assert response.status_code == 422, (change, response.text)
            assert words in response.text, (change, response.text)
        assert client.get("/api/profile").json()["push_subscriptions"] == 0


def test_a_subscription_belongs_to_the_browser_that_posted_it_last(
    notify_server: NotifyServer, push_service: PushService, database_of: DatabaseOf
) -> None:
    server = notify_server()
    database = database_of(server)
    subscription = push_service.subscription("shared")
    with server.client() as first, server.client() as second:
        assert first.post("/api/notifications/push-subscriptions", json=subscription).json()["created"] is True
        assert second.post("/api/notifications/push-subscriptions", json=subscription).json()["created"] is False
        assert first.get("/api/profile").json()["push_subscriptions"] == 0
        assert second.get("/api/profile").json()["push_subscriptions"] == 1
        # Only its owner can delete it; deleting twice is fine.
        assert first.delete("/api/notifications/push-subscriptions", params={"endpoint": subscription["endpoint"]})
        with database.sessions() as db:
            assert len(db.scalars(select(PushSubscription)).all()) == 1
        for _ in range(2):
            response = second.delete(
                "/api/notifications/push-subscriptions", params={"endpoint": subscription["endpoint"]}
            )
            assert response.status_code == 204
        assert second.get("/api/profile").json()["push_subscriptions"] == 0


def test_endpoint_allow_list() -> None:
    hosts = ["fcm.googleapis.com", "push.services.mozilla.com"]
    assert endpoint_allowed("https://fcm.googleapis.com/fcm/send/abc", hosts)
    assert endpoint_allowed("https://updates.push.services.mozilla.com/wpush/v2/x", hosts)
    assert not endpoint_allowed("https://fcm.googleapis.com.evil.test/x", hosts)
    assert not endpoint_allowed("https://evilfcm.googleapis.com.test/x", hosts)
    assert not endpoint_allowed("https://user:pw@fcm.googleapis.com/x", hosts)
    assert not endpoint_allowed("http://fcm.googleapis.com/x", hosts)
    assert not endpoint_allowed("https://fcm.googleapis.com:bad/x", hosts)
    assert not endpoint_allowed("file:///etc/passwd", hosts)
    assert endpoint_allowed("http://127.0.0.1:9999/push/1", ["127.0.0.1"])
    assert not endpoint_allowed("http://127.0.0.1:9999/push/1", hosts)
