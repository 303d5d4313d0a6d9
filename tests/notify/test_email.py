"""Email notifications through a real SMTP server (aiosmtpd) in the test process."""

from __future__ import annotations

import re
import time

import httpx
from sqlalchemy import select

from server.models import ItemStatus, NotificationItem
from tests.support.notify import SmtpSink, wait_until

from .conftest import DatabaseOf, NotifyServer, complete_upload


def _links(text: str) -> list[str]:
    return re.findall(r"https?://[^\s\"<>]+", text)


def test_completion_email_reaches_the_smtp_server_with_file_size_and_link(
    notify_server: NotifyServer, smtp: SmtpSink
) -> None:
    server = notify_server()
    with server.client() as client:
        assert client.put("/api/profile", json={"email": "ana@example.com"}).status_code == 200
        session = complete_upload(client, "Quarterly report.pdf", b"x" * 12_345)

    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["ana@example.com"]
    assert mail.mail_from == "uploads@smartcat.test"
    assert mail.message["To"] == "ana@example.com"
    assert mail.message["Subject"] == "Uploaded: Quarterly report.pdf"
    plain, html = mail.body("plain"), mail.body("html")
    for body in (plain, html):
        assert "Quarterly report.pdf" in body
        assert "12 KB" in body
    [link] = _links(plain)
    assert link.startswith(f"{server.base_url}/files/{session['session_id']}?token=")
    assert f'href="{link.replace("&", "&amp;")}"' in html

    # The link works without the uploader's cookie (an email read on another device) ...
    page = httpx.get(link)
    assert page.status_code == 200 and "Quarterly report.pdf" in page.text and "Uploaded in full" in page.text
    # ... but only with its token.
    assert httpx.get(link.split("?")[0]).status_code == 404
    # One signature character changed inside it (the last one also holds base64 padding bits that decode the same).
    tampered = link[:-10] + ("A" if link[-10] != "A" else "B") + link[-9:]
    assert httpx.get(tampered).status_code == 404


def test_completions_within_the_batch_window_make_one_email(
    notify_server: NotifyServer, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    server = notify_server(notify_batch_seconds=2.0)
    database = database_of(server)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        first = complete_upload(client, "one.txt")
        second = complete_upload(client, "two.txt")
        third = complete_upload(client, "three.txt")

    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "3 files uploaded"
    plain = mail.body("plain")
    for name in ("one.txt", "two.txt", "three.txt"):
        assert name in plain
    assert {link.split("?")[0].rsplit("/", 1)[1] for link in _links(plain)} == {
        s["session_id"] for s in (first, second, third)
    }

    # The ledger agrees: the three items went out in one message, and none is left to send.
    def message_ids() -> set[int | None] | None:
        with database.sessions() as db:
            items = db.scalars(select(NotificationItem)).all()
            if len(items) == 3 and all(i.status == ItemStatus.SENT.value for i in items):
                return {i.message_id for i in items}
            return None

    assert len(wait_until(message_ids, 10, "the items marked sent")) == 1
    assert len(smtp.messages) == 1


def test_the_rate_limit_holds_messages_back_and_batches_them(notify_server: NotifyServer, smtp: SmtpSink) -> None:
    server = notify_server(notify_rate_limit=1, notify_rate_window_seconds=2.0)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        complete_upload(client, "first.txt")
        smtp.wait_for(1)
        first_at = time.monotonic()
        complete_upload(client, "second.txt")
        complete_upload(client, "third.txt")

    mails = smtp.wait_for(2)
    second_at = time.monotonic()
    assert len(mails) == 2
    assert mails[0].message["Subject"] == "Uploaded: first.txt"
    assert mails[1].message["Subject"] == "2 files uploaded"
    assert "second.txt" in mails[1].body("plain") and "third.txt" in mails[1].body("plain")
    assert second_at - first_at >= 1.5, "the second message went out inside the rate window"


def test_mail_server_down_is_retried_until_it_accepts(
    notify_server: NotifyServer, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    smtp.stop()  # nothing listens on its port now
    server = notify_server()
    database = database_of(server)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        complete_upload(client, "late.txt")

    def failed_attempts() -> int:
        with database.sessions() as db:
            item = db.scalar(select(NotificationItem))
            return item.attempts if item is not None else 0

    wait_until(lambda: failed_attempts() >= 2, 15, "two failed SMTP attempts")
    smtp.start()
    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "Uploaded: late.txt"

    def sent() -> bool:
        with database.sessions() as db:
            item = db.scalar(select(NotificationItem))
            return item is not None and item.status == ItemStatus.SENT.value

    wait_until(sent, 10, "the item marked sent")
    assert len(smtp.messages) == 1


def test_an_address_the_mail_server_refuses_is_not_retried(
    notify_server: NotifyServer, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    smtp.refuse.add("nobody@example.com")
    server = notify_server()
    database = database_of(server)
    with server.client() as client:
        client.put("/api/profile", json={"email": "nobody@example.com"})
        complete_upload(client, "lost.txt")

    def item_status() -> str | None:
        with database.sessions() as db:
            item = db.scalar(select(NotificationItem))
            unsettled = (ItemStatus.PENDING.value, ItemStatus.SENDING.value)
            return item.status if item is not None and item.status not in unsettled else None

    assert wait_until(item_status, 15, "the item to settle") == ItemStatus.FAILED.value
    with database.sessions() as db:
        item = db.scalar(select(NotificationItem))
        assert item is not None and "550" in (item.last_error or "")
    assert smtp.rcpt_attempts == ["nobody@example.com"]
    assert smtp.messages == []


def test_no_email_without_an_address_or_when_turned_off(
    notify_server: NotifyServer, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    server = notify_server()
    database = database_of(server)
    with server.client() as anonymous, server.client() as opted_out:
        complete_upload(anonymous, "a.txt")
        opted_out.put("/api/profile", json={"email": "bo@example.com", "email_notifications": False})
        complete_upload(opted_out, "b.txt")
        with server.client() as wanting:
            wanting.put("/api/profile", json={"email": "cy@example.com"})
            complete_upload(wanting, "c.txt")
    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["cy@example.com"]
    with database.sessions() as db:
        assert len(db.scalars(select(NotificationItem)).all()) == 1
