"""Content policy: allowed types at creation, the first bytes sniffed at completion (a mismatch fails the upload
with the reason), and downloads always as attachments with a safe type."""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from server.content_policy import DEFAULT_ALLOWED_TYPES, mismatch, resolve_type
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.uploads import create_session, upload_all

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b" " * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.fixture
def strict(make_live_server: MakeLiveServer) -> LiveServer:
    """The production defaults for the content policy."""
    return make_live_server(allowed_content_types=list(DEFAULT_ALLOWED_TYPES), sniff_content=True)


def _upload(client: httpx.Client, name: str, data: bytes, **fields: Any) -> tuple[dict[str, Any], httpx.Response]:
    session = create_session(client, len(data), file_name=name, **fields)
    parts = upload_all(client, session, data)
    return session, client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})


def test_types_outside_the_allow_list_are_refused_at_creation(strict: LiveServer) -> None:
    with strict.client() as client:
        refused = client.post("/api/uploads", json={"file_name": "setup.exe", "size": 10})
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert detail.startswith("'setup.exe' is a file of type application/")
        assert "not accepted here (accepted: PDF, an Office document" in detail
        html = client.post("/api/uploads", json={"file_name": "a.html", "size": 10, "content_type": "text/html"})
        assert html.status_code == 422
        assert client.get("/api/uploads").json() == []


def test_a_file_without_a_browser_type_gets_the_one_its_name_implies(strict: LiveServer, s3: S3Client) -> None:
    with strict.client() as client:
        session, done = _upload(client, "messages.po", b'msgid "Hello"\nmsgstr "Hallo"\n', content_type="")
        assert done.status_code == 200, done.text
    head = s3.head_object(Bucket=strict.settings.s3_bucket, Key=session["object_key"])
    assert head["ContentType"] == "text/x-gettext-translation"


@pytest.mark.parametrize(
    ("name", "content_type", "data"),
    [
        ("report.pdf", "application/pdf", PDF),
        ("logo.png", "image/png", PNG),
        (
            "contract.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            _docx(),
        ),
        ("strings.xliff", "application/xliff+xml", b'\xef\xbb\xbf<?xml version="1.0"?><xliff/>'),
        ("notes.txt", "text/plain", "Grüße, 你好".encode()),
    ],
)
def test_files_whose_bytes_match_their_type_complete(
    strict: LiveServer, name: str, content_type: str, data: bytes
) -> None:
    with strict.client() as client:
        _, done = _upload(client, name, data, content_type=content_type)
        assert done.status_code == 200, done.text


def test_a_file_that_is_not_what_its_type_says_fails_with_the_reason(strict: LiveServer, s3: S3Client) -> None:
    with strict.client() as client:
        session, done = _upload(client, "invoice.pdf", EXE, content_type="application/pdf")
        assert done.status_code == 422
        assert done.json()["detail"].startswith("the file's content is not PDF, as its type application/pdf says")
        state = client.get(f"/api/uploads/{session['session_id']}").json()
        assert state["status"] == "failed"
        again = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": []})
        assert again.status_code in (410, 422)
    assert "Contents" not in s3.list_objects_v2(Bucket=strict.settings.s3_bucket)  # the object was deleted


def test_downloads_are_attachments_with_a_safe_type(strict: LiveServer) -> None:
    with strict.client() as client:
        session, done = _upload(client, "report.pdf", PDF, content_type="application/pdf")
        assert done.status_code == 200
        page = client.get(f"/files/{session['session_id']}")
    href = page.text.split('class="download" href="')[1].split('"')[0].replace("&amp;", "&")
    download = httpx.get(href)
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''report.pdf"
    assert download.headers["content-type"] == "application/pdf"


@pytest.mark.parametrize(
    ("content_type", "head", "ok"),
    [
        ("image/png", PNG, True),
        ("image/jpeg", PNG, False),
        ("application/zip", _docx(), True),
        ("application/msword", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, True),
        ("application/msword", PDF, False),
        ("application/json", b'  {"a": 1}', True),
        ("application/json", b"<html><script>", False),
        ("application/xml", b"\xff\xfe<\x00?\x00x\x00m\x00l\x00", True),  # UTF-16 with its BOM
        ("text/csv", b"a,b\x00c", False),
        ("text/plain", b"\xc3", True),  # a character cut by the sniff window, not the end of the file
        ("application/rtf", b"{\\rtf1\\ansi", True),
    ],
)
def test_sniffing_decides_by_the_first_bytes(content_type: str, head: bytes, ok: bool) -> None:
    assert (mismatch(content_type, head, complete=False) is None) is ok


def test_names_imply_types() -> None:
    assert resolve_type("a.XLIFF", "") == "application/xliff+xml"
    assert resolve_type("memory.tmx", "application/octet-stream") == "application/x-tmx+xml"
    assert resolve_type("report.pdf", "application/pdf; charset=binary") == "application/pdf"
    assert resolve_type("noextension", "") == "application/octet-stream"
