"""An address receives nothing until it is confirmed through the signed link sent to it; file names in messages
have no control or bidi characters and a bounded length."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from server.models import OutboxReceipt
from server.notify.policy import CompletedFile, email_content, push_payload
from tests.notify.conftest import DatabaseOf, NotifyServer, complete_upload
from tests.support.live_server import LiveServer
from tests.support.notify import SmtpSink, wait_until


def _link(mail_text: str) -> str:
    [link] = re.findall(r"https?://[^\s\"<>]+", mail_text)
    return link


def _notifier_took(server: LiveServer, database_of: DatabaseOf, count: int) -> None:
    """Wait until the notifier consumed ``count`` events (it decides then which channels apply)."""
    database = database_of(server)

    def taken() -> bool:
        with database.sessions() as db:
            rows = db.scalars(select(OutboxReceipt).where(OutboxReceipt.consumer == "notifications")).all()
            return len(rows) >= count

    wait_until(taken, 15, f"the notifier to take {count} event(s)")


def _confirm(link: str) -> httpx.Response:
    page = httpx.get(link)
    assert page.status_code == 200, page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None
    action = re.search(r'action="([^"]+)"', page.text)
    assert action is not None
    origin = link.split("/confirm-email")[0]
    return httpx.post(
        origin + action.group(1), data={"token": token.group(1).replace("&amp;", "&")}, headers={"Origin": origin}
    )


def test_nothing_is_mailed_until_the_address_is_confirmed(
    notify_server: NotifyServer, smtp: SmtpSink, database_of: DatabaseOf
) -> None:
    server = notify_server(email_confirmation_required=True)
    with server.client() as client:
        profile = client.put("/api/profile", json={"email": "ana@example.com"}).json()
        assert profile["email_confirmed"] is False
        [confirmation] = smtp.wait_for(1)
        assert confirmation.rcpt_tos == ["ana@example.com"]
        assert confirmation.message["Subject"] == "Confirm your email for upload notifications"
        link = _link(confirmation.message.get_content())
        assert link.startswith(f"{server.base_url}/confirm-email?token=")

        complete_upload(client, "before.pdf")
        _notifier_took(server, database_of, 1)
        assert len(smtp.messages) == 1  # only the confirmation: no completion mail to an unconfirmed address

        # Opening the link (as a mail scanner would) confirms nothing; the button does.
        assert httpx.get(link).status_code == 200
        assert client.get("/api/profile").json()["email_confirmed"] is False
        confirmed = _confirm(link)
        assert confirmed.status_code == 200 and "Email confirmed" in confirmed.text
        assert client.get("/api/profile").json()["email_confirmed"] is True

        complete_upload(client, "after.pdf")
        mails = smtp.wait_for(2)
        assert mails[1].rcpt_tos == ["ana@example.com"]
        assert mails[1].message["Subject"] == "Uploaded: after.pdf"

        # A new address starts unconfirmed again; the old link no longer confirms anything.
        assert client.put("/api/profile", json={"email": "bo@example.com"}).json()["email_confirmed"] is False
        smtp.wait_for(3)
        assert _confirm(link).status_code == 409
        assert client.get("/api/profile").json()["email_confirmed"] is False


def test_forged_or_expired_confirmation_links_confirm_nothing(notify_server: NotifyServer, smtp: SmtpSink) -> None:
    server = notify_server(email_confirmation_required=True, email_confirmation_max_age_seconds=60)
    with server.client() as client:
        client.put("/api/profile", json={"email": "ana@example.com"})
        link = _link(smtp.wait_for(1)[0].message.get_content())
        forged = link[:-3] + ("abc" if not link.endswith("abc") else "xyz")
        assert httpx.get(forged).status_code == 400
        refused = httpx.post(
            f"{server.base_url}/api/profile/email-confirmation",
            data={"token": forged.split("token=")[1]},
            headers={"Origin": server.base_url},
        )
        assert refused.status_code == 400
        assert client.get("/api/profile").json()["email_confirmed"] is False


def test_confirmation_emails_are_rate_limited(notify_server: NotifyServer, smtp: SmtpSink) -> None:
    server = notify_server(email_confirmation_required=True, rate_limit_confirmation_email="2/hour")
    with server.client() as client:
        statuses = [client.put("/api/profile", json={"email": f"v{n}@example.com"}).status_code for n in range(3)]
        assert statuses == [200, 200, 429]
    with server.client() as other:  # the same victim from another user: counted per address too
        assert other.put("/api/profile", json={"email": "v0@example.com"}).status_code == 200
        assert other.put("/api/profile", json={"email": "v0@example.com"}).status_code == 429
    assert len(smtp.wait_for(3)) == 3


def _file(name: str) -> CompletedFile:
    return CompletedFile(session_id="s1", file_name=name, size=10)


def test_file_names_lose_control_and_bidi_characters_and_are_bounded() -> None:
    spoof = "invoice\u202egnp.exe\u2066\u200b\x1b[31m" + "x" * 500
    content = email_content([_file(spoof)], ["https://u.example/files/s1?token=t"])
    for text in (content.subject, content.text, content.html):
        assert not re.search("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\x00-\x1f\x7f]", text.replace("\n", ""))
        assert "x" * 200 not in text
    assert content.subject.startswith("Uploaded: invoice gnp.exe")
    payload: dict[str, Any] = push_payload([_file(spoof)])
    assert "\u202e" not in payload["body"] and "\u202e" not in payload["files"][0]["file_name"]
    assert len(payload["files"][0]["file_name"]) <= 120
