"""A file the malware scan blocks reaches its owner by the channels a completion does, saying why, with no link."""

from __future__ import annotations

from datetime import UTC, datetime

from server.notify.policy import BLOCKED_NOTE, CompletedFile, email_content, push_payload
from tests.server.test_scan import upload
from tests.support.clamd import EICAR_SIGNATURE, ClamdService, eicar
from tests.support.notify import PushService, SmtpSink

from .conftest import NotifyServer
from .test_email import _links
from .test_webpush import _subscribe

VERDICT = f"Blocked: malware found ({EICAR_SIGNATURE})"


def test_a_blocked_upload_is_emailed_and_pushed_with_its_verdict_and_no_link(
    notify_server: NotifyServer, smtp: SmtpSink, push_service: PushService, clamd: ClamdService
) -> None:
    server = notify_server(scan="clamd", clamd_port=clamd.port)
    with server.client() as client:
        push_service.vapid_public_key = client.get("/api/notifications/vapid-public-key").json()["public_key"]
        _subscribe(client, push_service, "laptop")
        assert client.put("/api/profile", json={"email": "ana@example.com"}).status_code == 200
        sid = upload(client, eicar(), "invoice.txt")["session_id"]

    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "Blocked: invoice.txt"
    plain, html = mail.body("plain"), mail.body("html")
    for body in (plain, html):
        assert VERDICT in body and "invoice.txt" in body
        assert sid not in body, "nothing leads to the blocked file"
    assert _links(plain) == [] and "href" not in html

    [push] = push_service.wait_for(1)
    assert (push.payload["title"], push.payload["url"]) == ("Upload blocked", "/files")
    assert push.payload["body"] == f"invoice.txt (68 B): {VERDICT}."
    assert push.payload["files"] == [{"session_id": sid, "file_name": "invoice.txt", "size": 68, "blocked": VERDICT}]


def test_a_batch_with_blocked_and_released_files_links_only_the_released() -> None:
    when = datetime(2026, 12, 2, tzinfo=UTC)
    files = [
        CompletedFile("s1", "clean.pdf", 2_000_000, when),
        CompletedFile("s2", "bad.exe", 1_000, when, blocked=VERDICT),
    ]
    mail = email_content(files, ["https://app/files/s1?token=t1", "https://app/files/s2?token=t2"])
    assert mail.subject == "2 files uploaded, 1 blocked"
    assert _links(mail.text) == ["https://app/files/s1?token=t1"]
    assert f"- bad.exe (1.0 KB): {VERDICT}" in mail.text and BLOCKED_NOTE in mail.text
    assert "s2" not in mail.html and "https://app/files/s1?token=t1" in mail.html
    push = push_payload(files)
    assert (push["title"], push["url"]) == ("1 upload blocked, 1 complete", "/files")
    assert push["body"] == f"bad.exe: {VERDICT}. clean.pdf is uploaded."
    only_clean = push_payload(files[:1])
    assert only_clean["url"] == "/files/s1" and "blocked" not in only_clean["files"][0]
