"""The pure rules: rate limit, wording of pushes and emails, and what user-given names can and cannot do there."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import unquote

import pytest

from server.db import Database
from server.links import FileLinks
from server.notify.mail import compose
from server.notify.policy import CompletedFile, email_content, human_size, next_allowed_at, one_line, push_payload


def test_rate_limit_allows_up_to_the_limit_in_any_window() -> None:
    assert next_allowed_at([], now=100, limit=2, window=60) == 100
    assert next_allowed_at([90], now=100, limit=2, window=60) == 100
    # Two in the window: the next may go when the older of them leaves it.
    assert next_allowed_at([50, 90], now=100, limit=2, window=60) == 110
    assert next_allowed_at([90, 50, 10], now=100, limit=2, window=60) == 110  # order and old sends do not matter
    assert next_allowed_at([40, 50, 90], now=100, limit=1, window=60) == 150
    assert next_allowed_at([39.9], now=100, limit=1, window=60) == 100


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (12_345, "12 KB"), (2_500_000, "2.5 MB"), (5 * 1024**4, "5.5 TB")],
)
def test_sizes_read_like_the_page(size: int, text: str) -> None:
    assert human_size(size) == text


def test_one_push_for_one_file_and_one_for_a_batch() -> None:
    single = push_payload([CompletedFile("s1", "report.pdf", 2_500_000)])
    assert (single["title"], single["body"], single["url"]) == (
        "Upload complete",
        "report.pdf (2.5 MB) is uploaded.",
        "/files/s1",
    )
    files = [CompletedFile(f"s{i}", f"f{i}.txt", 10) for i in range(5)]
    assert push_payload(files[:2])["body"] == "f0.txt and f1.txt are uploaded."
    assert push_payload(files[:3])["body"] == "f0.txt, f1.txt and f2.txt are uploaded."
    batch = push_payload(files)
    assert batch["title"] == "5 uploads complete"
    assert batch["body"] == "f0.txt, f1.txt, f2.txt and 2 more are uploaded."
    assert batch["url"] == "/files"
    assert [f["session_id"] for f in batch["files"]] == ["s0", "s1", "s2", "s3", "s4"]
    with pytest.raises(ValueError):
        push_payload([])
    # Served under a path (PUBLIC_PATH, a host's mount): the page a click opens is the uploader's.
    assert push_payload([CompletedFile("s1", "report.pdf", 1)], "/uploader")["url"] == "/uploader/files/s1"
    assert push_payload(files, "/uploader")["url"] == "/uploader/files"


def test_file_names_cannot_inject_headers_or_markup() -> None:
    evil = 'a\r\nBcc: victim@example.com\r\n<script>alert(1)</script>"&.txt'
    assert "\r" not in one_line(evil) and "\n" not in one_line(evil)
    assert len(one_line("x" * 500)) == 80
    links = FileLinks("secret", "https://uploads.example.com", max_age=3600)
    message = compose("Smartcat <uploads@example.com>", "ana@example.com", [CompletedFile("s1", evil, 5)], links)
    assert isinstance(message, EmailMessage)
    assert message["Bcc"] is None
    assert "\n" not in str(message["Subject"])
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    plain_part = message.get_body(preferencelist=("plain",))
    assert plain_part is not None and "https://uploads.example.com/files/s1?token=" in plain_part.get_content()


def test_email_bodies_name_every_file_with_its_link() -> None:
    files = [CompletedFile("s1", "a.txt", 1500), CompletedFile("s2", "b.txt", 20)]
    content = email_content(files, ["https://x/files/s1?token=t1", "https://x/files/s2?token=t2"])
    assert content.subject == "2 files uploaded"
    assert "- a.txt (1.5 KB)\n  https://x/files/s1?token=t1" in content.text
    assert '<a href="https://x/files/s2?token=t2">b.txt</a> (20 B)' in content.html
    with pytest.raises(ValueError):
        email_content(files, ["only-one-link"])


def test_file_links_are_bound_to_their_file_and_secret(database_url: str) -> None:
    database = Database(database_url)
    database.migrate()
    try:
        with database.sessions() as db:
            links = FileLinks("secret", "https://uploads.example.com/", max_age=3600)
            token = links.token("s1")
            assert links.allows(db, "s1", token)
            assert not links.allows(db, "s2", token)
            assert not links.allows(db, "s1", None) and not links.allows(db, "s1", "")
            assert not links.allows(db, "s1", token + "x")
            assert not FileLinks("other", "https://uploads.example.com", max_age=3600).allows(db, "s1", token)
            # The token carries the second it was signed, so the link's own token is checked, not compared.
            link, prefix = links.absolute("s1"), "https://uploads.example.com/files/s1?token="
            assert link.startswith(prefix) and links.allows(db, "s1", unquote(link.removeprefix(prefix)))
    finally:
        database.dispose()
