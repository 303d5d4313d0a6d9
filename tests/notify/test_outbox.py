"""The transactional outbox: events written with the state change, delivered at least once to a signed webhook,
through retries and restarts, never duplicated by a double complete."""

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from server import webhooks
from server.clock import utcnow
from server.db import Database
from server.models import DeliveryStatus, OutboxEvent, OutboxReceipt, UploadSession, UploadStatus
from server.retry import retry_delay
from server.uploads.service import end_session
from tests.support.notify import SmtpSink, WebhookReceiver, wait_until
from tests.support.uploads import create_session, upload_all

from .conftest import WEBHOOK_SECRET, DatabaseOf, NotifyServer, complete_upload

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def _events(database: Database) -> list[OutboxEvent]:
    with database.sessions() as db:
        return list(db.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def _delivered(database: Database, count: int = 1) -> list[OutboxEvent] | None:
    rows = _events(database)
    done = [r for r in rows if r.status == DeliveryStatus.DELIVERED.value]
    return rows if len(done) >= count else None


# ---- writing -------------------------------------------------------------------------------------------------


def _session_row(database: Database) -> UploadSession:
    row = UploadSession(
        owner_id="user-1",
        file_name="a.bin",
        size=5,
        content_type="application/octet-stream",
        object_key="uploads/user-1/x",
        upload_id="upload-1",
        part_size=5,
        part_count=1,
    )
    with database.sessions() as db:
        db.add(row)
        db.commit()
    return row


def test_the_event_commits_with_the_state_change_or_not_at_all(database_url: str) -> None:
    database = Database(database_url)
    database.migrate()
    try:
        row = _session_row(database)

        def refuse(_session: Session) -> None:
            raise RuntimeError("the commit fails")

        with database.sessions() as db:
            event.listen(db, "before_commit", refuse)
            with pytest.raises(RuntimeError):
                end_session(db, row, UploadStatus.COMPLETED, etag='"etag-1"', checksum="sum-1")
            db.rollback()
        with database.sessions() as db:
            assert db.get(UploadSession, row.id).status == UploadStatus.UPLOADING.value  # type: ignore[union-attr]
        assert _events(database) == []

        with database.sessions() as db:
            end_session(db, row, UploadStatus.COMPLETED, etag='"etag-1"', checksum="sum-1")
            end_session(db, row, UploadStatus.COMPLETED, etag='"etag-2"', checksum="sum-2")  # a second one: no event
        [written] = _events(database)
        assert written.type == "upload_completed" and written.status == DeliveryStatus.PENDING.value
        payload = json.loads(written.payload)
        assert payload["data"]["etag"] == '"etag-1"' and payload["data"]["checksum_sha256"] == "sum-1"
    finally:
        database.dispose()


def test_a_completed_upload_reaches_the_webhook_signed_with_its_facts(
    notify_server: NotifyServer, webhook: WebhookReceiver, database_of: DatabaseOf
) -> None:
    server = notify_server()
    with server.client() as client:
        session = complete_upload(client, "report.pdf", b"hello world")
        state = client.get(f"/api/uploads/{session['session_id']}").json()

    wait_until(lambda: webhook.events, 10, "the webhook")
    [body] = webhook.events.values()
    assert webhook.rejected == []
    assert body["type"] == "upload_completed"
    data = body["data"]
    assert data["session_id"] == session["session_id"]
    assert data["object_key"] == session["object_key"]
    assert data["size"] == 11 and data["content_type"] == "application/pdf" and data["file_name"] == "report.pdf"
    assert data["etag"] == state["etag"] and data["status"] == "completed"
    assert data["owner_id"] == session["object_key"].split("/")[1]
    assert data["created_at"] and data["completed_at"] and body["occurred_at"] == data["completed_at"]
    [request] = webhook.requests
    assert request.path == "/hooks"
    assert request.headers["smartcat-event-type"] == "upload_completed"
    wait_until(lambda: _delivered(database_of(server)), 10, "the event marked delivered")


def test_a_double_and_a_concurrent_complete_make_one_event_and_one_email(
    notify_server: NotifyServer, webhook: WebhookReceiver, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    server = notify_server(notify_batch_seconds=0.5)
    database = database_of(server)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        session = create_session(client, 5, file_name="twice.txt")
        parts = upload_all(client, session, b"hello")
        url = f"/api/uploads/{session['session_id']}/complete"
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.post(url, json={"parts": parts}).status_code, range(4)))
        assert answers == [200] * 4
        assert client.post(url, json={"parts": parts}).status_code == 200

    smtp.wait_for(1)
    rows = wait_until(lambda: _delivered(database), 10, "the event delivered")
    assert [r.type for r in rows] == ["upload_completed"]
    assert len(webhook.events) == 1
    assert len(smtp.messages) == 1


def test_an_abort_is_an_upload_aborted_event(notify_server: NotifyServer, webhook: WebhookReceiver) -> None:
    server = notify_server()
    with server.client() as client:
        session = create_session(client, 5, file_name="cancelled.txt")
        assert client.delete(f"/api/uploads/{session['session_id']}").status_code == 204
        assert client.delete(f"/api/uploads/{session['session_id']}").status_code == 204
    wait_until(lambda: webhook.events, 10, "the webhook")
    [body] = webhook.events.values()
    assert body["type"] == "upload_aborted" and body["data"]["status"] == "aborted"
    assert body["data"]["completed_at"] is None and body["data"]["etag"] is None


def test_an_upload_storage_lost_is_one_upload_expired_event(
    notify_server: NotifyServer, webhook: WebhookReceiver, s3: S3Client, database_of: DatabaseOf
) -> None:
    server = notify_server()
    with server.client() as client:
        session = create_session(client, 5, file_name="forgotten.txt")
        s3.abort_multipart_upload(
            Bucket=server.settings.s3_bucket, Key=session["object_key"], UploadId=session["upload_id"]
        )
        assert client.get(f"/api/uploads/{session['session_id']}").status_code == 410
        # Seen again: the session is expired now (no second observation, no second event).
        assert client.get(f"/api/uploads/{session['session_id']}").json()["status"] == "expired"
    wait_until(lambda: webhook.events, 10, "the webhook")
    [body] = webhook.events.values()
    assert body["type"] == "upload_expired" and body["data"]["status"] == "expired"
    assert [r.type for r in _events(database_of(server))] == ["upload_expired"]


# ---- delivering ----------------------------------------------------------------------------------------------


def test_a_failing_receiver_is_retried_and_a_consumer_that_succeeded_is_not_repeated(
    notify_server: NotifyServer, webhook: WebhookReceiver, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    webhook.statuses.extend([500, 503])
    server = notify_server()
    database = database_of(server)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        complete_upload(client, "retried.txt")

    [row] = wait_until(lambda: _delivered(database), 15, "the event delivered")
    assert row.attempts == 2 and row.last_error is None
    assert len(webhook.requests) == 3
    assert len({r.headers["smartcat-event-id"] for r in webhook.requests}) == 1
    assert len({r.body for r in webhook.requests}) == 1, "retries send the same body"
    assert len(webhook.events) == 1
    smtp.wait_for(1)
    assert len(smtp.messages) == 1, "the notifier took the event once; webhook retries did not repeat it"


def test_delivery_gives_up_after_the_last_attempt(
    notify_server: NotifyServer, webhook: WebhookReceiver, database_of: DatabaseOf
) -> None:
    webhook.statuses.extend([500] * 10)
    server = notify_server(outbox_max_attempts=3)
    database = database_of(server)
    with server.client() as client:
        complete_upload(client, "never.txt")

    def failed() -> OutboxEvent | None:
        rows = _events(database)
        return rows[0] if rows and rows[0].status == DeliveryStatus.FAILED.value else None

    row = wait_until(failed, 15, "the event given up")
    assert row.attempts == 3
    assert "webhook" in (row.last_error or "") and "500" in (row.last_error or "")
    assert len(webhook.requests) == 3


def test_an_event_committed_before_a_restart_is_delivered_after_it(
    notify_server: NotifyServer, webhook: WebhookReceiver, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    # This process only answers requests: the event is committed, nothing delivers it.
    server = notify_server(outbox_dispatcher=False)
    database = database_of(server)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        session = complete_upload(client, "survivor.txt")
    [row] = _events(database)
    assert row.status == DeliveryStatus.PENDING.value and row.attempts == 0

    server.stop()
    server.settings = server.settings.model_copy(update={"outbox_dispatcher": True})
    server.start()

    wait_until(lambda: _delivered(database), 15, "the event delivered after the restart")
    [body] = webhook.events.values()
    assert body["data"]["session_id"] == session["session_id"]
    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "Uploaded: survivor.txt"


def test_a_graceful_stop_finishes_the_delivery_in_flight_and_records_it(
    notify_server: NotifyServer, webhook: WebhookReceiver, database_of: DatabaseOf
) -> None:
    webhook.open.clear()  # the receiver holds the delivery until the server is stopping
    server = notify_server()
    database = database_of(server)
    with server.client() as client:
        complete_upload(client, "draining.txt")
    assert webhook.waiting.wait(10), "the dispatcher never called the webhook"
    assert server.app is not None
    dispatcher = server.app.state.notifications.dispatcher
    stopping = threading.Thread(target=server.stop, name="graceful-stop")
    stopping.start()
    wait_until(lambda: dispatcher.stopping, 10, "the server stopping")
    webhook.open.set()  # the receiver answers only now, while the server stops
    stopping.join(30)
    assert not stopping.is_alive()

    [row] = _events(database)
    assert row.status == DeliveryStatus.DELIVERED.value, "the stop cut the delivery off: the next process repeats it"
    assert row.claim_token is None
    with database.sessions() as db:
        assert set(db.scalars(select(OutboxReceipt.consumer))) == {"webhook", "notifications"}
    assert len(webhook.requests) == 1


def test_a_delivery_cut_off_by_a_restart_is_made_after_it(
    notify_server: NotifyServer, webhook: WebhookReceiver, database_of: DatabaseOf
) -> None:
    webhook.open.clear()  # the receiver holds the first request past the stop's drain (a lease of 2 s: 1 s) ...
    webhook.statuses.append(503)  # ... and, once let go, refuses it: that delivery never happened
    server = notify_server(outbox_lease_seconds=2)
    database = database_of(server)
    with server.client() as client:
        complete_upload(client, "interrupted.txt")
    assert webhook.waiting.wait(10), "the dispatcher never called the webhook"
    server.stop()  # the server goes down mid-delivery
    webhook.open.set()
    [row] = _events(database)
    assert row.status == DeliveryStatus.PENDING.value
    assert row.claimed_until is None, "a clean shutdown hands its claims back (no wait for the lease)"

    server.start()
    wait_until(lambda: _delivered(database), 15, "the event delivered after the restart")
    assert len(webhook.events) == 1


def test_a_claim_left_by_a_dead_process_is_taken_over_when_its_lease_ends(
    notify_server: NotifyServer, webhook: WebhookReceiver, database_of: DatabaseOf
) -> None:
    server = notify_server(outbox_dispatcher=False, outbox_lease_seconds=1)
    database = database_of(server)
    with server.client() as client:
        complete_upload(client, "orphan.txt")
    # What a process killed mid-delivery leaves behind: a claim nobody will release.
    with database.sessions() as db:
        row = db.scalars(select(OutboxEvent)).one()
        row.claim_token, row.claimed_until = "dead-process-1", utcnow() + timedelta(seconds=1)
        db.commit()
    server.stop()
    server.settings = server.settings.model_copy(update={"outbox_dispatcher": True})
    server.start()
    [row] = wait_until(lambda: _delivered(database), 15, "the event delivered once the lease ran out")
    assert row.delivered_at is not None and row.delivered_at >= row.created_at
    assert len(webhook.events) == 1


# ---- the signature scheme ------------------------------------------------------------------------------------


def test_webhook_signatures_are_checked_for_tampering_secret_and_freshness() -> None:
    body = b'{"event_id":"e1"}'
    headers = webhooks.signed_headers(WEBHOOK_SECRET, body, event_id="e1", event_type="upload_completed", now=1000)
    webhooks.verify(WEBHOOK_SECRET, body, headers, now=1000)
    webhooks.verify(WEBHOOK_SECRET, body, {k.lower(): v for k, v in headers.items()}, now=1000 + 299)
    bad = {
        "tampered body": (WEBHOOK_SECRET, body + b" ", headers, 1000),
        "other secret": ("another-secret", body, headers, 1000),
        "replayed later": (WEBHOOK_SECRET, body, headers, 1000 + 301),
        "from the future": (WEBHOOK_SECRET, body, headers, 1000 - 301),
        "no signature": (WEBHOOK_SECRET, body, {"Smartcat-Timestamp": "1000"}, 1000),
        "bad timestamp": (WEBHOOK_SECRET, body, {**headers, "Smartcat-Timestamp": "soon"}, 1000),
        "moved timestamp": (WEBHOOK_SECRET, body, {**headers, "Smartcat-Timestamp": "1001"}, 1000),
    }
    for name, (secret, raw, given, now) in bad.items():
        with pytest.raises(webhooks.WebhookVerificationError):
            webhooks.verify(secret, raw, given, now=now)
            pytest.fail(name)
    # During a secret rotation two signatures may be sent; one valid one is enough.
    rotated = {**headers, "Smartcat-Signature": f"v1=00ff, {headers['Smartcat-Signature']}"}
    webhooks.verify(WEBHOOK_SECRET, body, rotated, now=1000)


def test_a_receiver_refusing_the_signature_gets_retried_with_a_fresh_one(
    notify_server: NotifyServer, webhook: WebhookReceiver, database_of: DatabaseOf
) -> None:
    server = notify_server(webhook_secret="not-the-receivers-secret", outbox_max_attempts=2)
    database = database_of(server)
    with server.client() as client:
        complete_upload(client)
    wait_until(lambda: len(webhook.rejected) >= 2, 10, "two rejected deliveries")
    assert webhook.rejected == ["signature does not match"] * 2
    assert webhook.events == {}
    wait_until(lambda: _events(database)[0].status == DeliveryStatus.FAILED.value, 10, "the event given up")


def test_retry_delays_grow_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, step in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0), (50, 60.0)]:
        delays = [retry_delay(attempt, 2.0, 60.0, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert max(delays) - min(delays) > step / 4, "jittered"
