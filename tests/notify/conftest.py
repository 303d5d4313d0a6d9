"""Fixtures for events and notifications: real receivers, and servers whose loops run fast enough for tests.

``notify_server(**overrides)`` starts a live server (real SeaweedFS) wired to this test's SMTP sink, push service
and webhook receiver, with short poll, retry and batching times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import httpx
import pytest

from server.db import Database
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.notify import PushService, SmtpSink, WebhookReceiver, running
from tests.support.uploads import create_session, upload_all

WEBHOOK_SECRET = "webhook-test-secret"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with running(PushService()) as service:
        yield service


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with running(WebhookReceiver(secret=WEBHOOK_SECRET)) as receiver:
        yield receiver


#: ``database_of(server)``: the server's database, opened from the test (closed after it).
DatabaseOf = Callable[[LiveServer], Database]


class NotifyServer(Protocol):
    def __call__(self, **overrides: Any) -> LiveServer: ...


def fast_settings(smtp_port: int, webhook_url: str | None) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "webhook_url": webhook_url,
        "webhook_secret": WEBHOOK_SECRET,
        "push_allowed_hosts": ["127.0.0.1"],
        "outbox_poll_seconds": 0.2,
        "outbox_retry_base_seconds": 0.1,
        "outbox_retry_max_seconds": 0.4,
        "notify_batch_seconds": 0.0,
        "mail_from": "Smartcat uploads <uploads@smartcat.test>",
        # These tests (and e2e/test_notify.py) are about delivery, batching and limits; confirming an address
        # before it receives anything is tested in tests/notify/test_email_confirmation.py.
        "email_confirmation_required": False,
    }


@pytest.fixture
def notify_server(make_live_server: MakeLiveServer, smtp: SmtpSink, webhook: WebhookReceiver) -> NotifyServer:
    def make(**overrides: Any) -> LiveServer:
        values = fast_settings(smtp.port, webhook.base_url + "/hooks")
        values.update(overrides)
        return make_live_server(**values)

    return make


@pytest.fixture
def database_of() -> Iterator[DatabaseOf]:
    opened: list[Database] = []

    def open_(server: LiveServer) -> Database:
        database = Database(server.settings.resolved_database_url)
        opened.append(database)
        return database

    yield open_
    for database in opened:
        database.dispose()


def complete_upload(
    client: httpx.Client, file_name: str = "report.pdf", data: bytes = b"hello world"
) -> dict[str, Any]:
    """Create, upload and complete a small file; return the session as created."""
    session = create_session(client, len(data), file_name=file_name, content_type="application/pdf")
    parts = upload_all(client, session, data)
    done = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})
    assert done.status_code == 200, done.text
    return session
