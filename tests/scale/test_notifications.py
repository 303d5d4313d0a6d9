"""Two instances on one database both run the outbox dispatcher and the notifier: each upload's email and push are
sent exactly once, and its webhook event delivered once, whichever instance completed it and whichever claimed its
event and its notifications (leases, server/lease.py). With ``--db=postgresql`` the claims are concurrent
transactions on PostgreSQL; on SQLite, writers on one file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import select

from server.db import Database
from server.models import NotificationItem
from tests.notify.conftest import (  # the real receivers, as fixtures
    complete_upload,
    fast_settings,
    push_service,  # noqa: F401
    smtp,  # noqa: F401
    webhook,  # noqa: F401
)
from tests.support.live_server import MakeLiveServer
from tests.support.notify import PushService, SmtpSink, WebhookReceiver, wait_until

USERS = 4


def _statuses(database: Database) -> list[str]:
    with database.sessions() as db:
        return list(db.scalars(select(NotificationItem.status)))


def test_each_notification_is_sent_once_while_two_instances_dispatch(
    make_live_server: MakeLiveServer,
    smtp: SmtpSink,  # noqa: F811
    push_service: PushService,  # noqa: F811
    webhook: WebhookReceiver,  # noqa: F811
) -> None:
    settings: dict[str, Any] = fast_settings(smtp.port, webhook.base_url + "/hooks")
    a = make_live_server(**settings)
    # The same data dir: the same database, webhook secret and VAPID key, as instances sharing them in production.
    b = make_live_server(**settings, data_dir=a.settings.data_dir, s3_bucket=a.settings.s3_bucket)
    assert a.app is not None and b.app is not None
    assert a.app.state.notifications.dispatcher.started and b.app.state.notifications.dispatcher.started
    clients: list[httpx.Client] = [(a, b)[n % 2].client() for n in range(USERS)]
    try:
        push_service.vapid_public_key = clients[0].get("/api/notifications/vapid-public-key").json()["public_key"]
        for n, client in enumerate(clients):
            assert client.put("/api/profile", json={"email": f"user{n}@example.com"}).status_code == 200
            subscribed = client.post("/api/notifications/push-subscriptions", json=push_service.subscription(f"u{n}"))
            assert subscribed.status_code == 200, subscribed.text
        with ThreadPoolExecutor(USERS) as pool:  # at once, half through each instance
            list(pool.map(lambda n: complete_upload(clients[n], f"file-{n}.txt"), range(USERS)))
    finally:
        for client in clients:
            client.close()

    pushes = push_service.wait_for(USERS, 60)
    mails = smtp.wait_for(USERS, 60)
    # Once every ledger item is sent, no instance can send one again (a send needs a claim on an unsent item).
    database: Database = a.app.state.database
    statuses = wait_until(lambda: (s := _statuses(database)) and set(s) == {"sent"} and s, 60, "every item sent")
    assert len(statuses) == 2 * USERS, "one email and one push item per upload"
    assert sorted(recipient for mail in smtp.messages for recipient in mail.rcpt_tos) == sorted(
        f"user{n}@example.com" for n in range(USERS)
    )
    assert sorted(push.subscription for push in push_service.pushes) == sorted(f"u{n}" for n in range(USERS))
    assert len(mails) == len(pushes) == USERS
    wait_until(lambda: len(webhook.events) == USERS, 30, "every event at the webhook")
    assert len(webhook.requests) == USERS, "each event delivered once"
