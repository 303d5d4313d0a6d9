"""Bytes cannot exceed the plan: each part URL signs the part's exact length (and SHA-256); sessions have a hard
maximum age; the bucket aborts forgotten multipart uploads; per-user caps and the size limit hold.

The security review's probe is re-run here against the real SeaweedFS: a 0-byte file is declared and 20 MB are
PUT to its part URL; the store must not grow.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from server.clock import utcnow
from server.db import Database
from server.janitor import expire_idle_sessions
from server.models import UploadSession
from server.storage import Storage
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.seaweed import SeaweedService
from tests.support.uploads import create_session
from wire.plan import MiB

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PART = 5 * MiB
OVERSIZE = 20 * 1000 * 1000


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def strict(make_live_server: MakeLiveServer) -> LiveServer:
    """A server with the production defaults for checksums."""
    return make_live_server(require_checksums=True)


def _store_bytes(seaweed: SeaweedService) -> int:
    """Bytes SeaweedFS keeps on disk (volumes, filer metadata), as ``du`` sees them."""
    out = subprocess.run(["du", "-sb", str(seaweed.instance.config.data_dir)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def _sign(client: httpx.Client, session_id: str, parts: dict[int, bytes]) -> dict[int, str]:
    response = client.post(
        f"/api/uploads/{session_id}/urls",
        json={"parts": [{"part_number": n, "checksum_sha256": b64sha(d)} for n, d in parts.items()]},
    )
    assert response.status_code == 200, response.text
    return {u["part_number"]: u["url"] for u in response.json()["urls"]}


def test_probe_over_length_put_to_an_empty_files_url_stores_nothing(
    strict: LiveServer, seaweed: SeaweedService, s3: S3Client
) -> None:
    """The review's probe: declare 0 bytes, PUT 20 MB twice to part 1's URL (with the checksum of what is sent)."""
    payload = os.urandom(OVERSIZE)
    with strict.client() as client:
        session = create_session(
            client, 0, file_name="empty.txt", content_type="text/plain", checksum_algorithm="SHA256"
        )
        # The attacker asks for a URL carrying the checksum of their 20 MB: the checksum alone would not stop them.
        response = client.post(
            f"/api/uploads/{session['session_id']}/urls",
            json={"parts": [{"part_number": 1, "checksum_sha256": b64sha(payload)}]},
        )
        url = response.json()["urls"][0]["url"]
    assert "content-length" in parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")
    before = _store_bytes(seaweed)
    for _ in range(2):
        put = httpx.put(url, content=payload, headers={"x-amz-checksum-sha256": b64sha(payload)}, timeout=120)
        assert put.status_code == 403, put.text
        assert "SignatureDoesNotMatch" in put.text
    growth = _store_bytes(seaweed) - before
    print(f"store growth after two over-length PUTs of {OVERSIZE} bytes: {growth} bytes")
    listed = s3.list_parts(Bucket=strict.settings.s3_bucket, Key=session["object_key"], UploadId=session["upload_id"])
    assert listed.get("Parts", []) == []
    # Nothing of the payload was kept: growth is SeaweedFS's own bookkeeping, far below one copy of the payload.
    assert growth < OVERSIZE // 100


def test_a_part_url_takes_exactly_its_planned_length(strict: LiveServer, s3: S3Client) -> None:
    data = os.urandom(PART + 1000)
    with strict.client() as client:
        session = create_session(client, len(data), part_size=PART, checksum_algorithm="SHA256")
        first, last = data[:PART], data[PART:]
        urls = _sign(client, session["session_id"], {1: first, 2: last})
    bucket, key, upload_id = strict.settings.s3_bucket, session["object_key"], session["upload_id"]

    too_long = os.urandom(OVERSIZE)
    refused = httpx.put(urls[1], content=too_long, headers={"x-amz-checksum-sha256": b64sha(first)}, timeout=120)
    assert refused.status_code == 403
    short = httpx.put(urls[1], content=first[:-1], headers={"x-amz-checksum-sha256": b64sha(first)}, timeout=60)
    assert short.status_code == 403
    assert s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", []) == []

    for n, chunk in ((1, first), (2, last)):
        ok = httpx.put(urls[n], content=chunk, headers={"x-amz-checksum-sha256": b64sha(chunk)}, timeout=60)
        assert ok.status_code == 200, ok.text
    sizes = [(p["PartNumber"], p["Size"]) for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]]
    assert sizes == [(1, PART), (2, 1000)]


def _raw_put(url: str, head_lines: list[str], body: bytes) -> bytes:
    """Send a hand-made HTTP request (what no client library lets us get wrong on purpose); return the answer."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        request = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n" + "".join(
            f"{line}\r\n" for line in head_lines
        )
        sock.sendall(request.encode() + b"\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused before the body was read
            sock.sendall(body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_signed_length_cannot_be_smuggled_past_with_chunked_encoding(strict: LiveServer, s3: S3Client) -> None:
    """``Content-Length`` as signed plus ``Transfer-Encoding: chunked`` with 20 MB: refused, nothing stored."""
    data = os.urandom(PART)
    payload = os.urandom(OVERSIZE)
    with strict.client() as client:
        session = create_session(client, PART, part_size=PART, checksum_algorithm="SHA256")
        url = _sign(client, session["session_id"], {1: payload})[1]
    chunked = b"".join(
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for piece in (payload[i : i + MiB] for i in range(0, len(payload), MiB))
    )
    answer = _raw_put(
        url,
        [f"Content-Length: {len(data)}", "Transfer-Encoding: chunked", f"x-amz-checksum-sha256: {b64sha(payload)}"],
        chunked + b"0\r\n\r\n",
    )
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 403), answer[:300]
    listed = s3.list_parts(Bucket=strict.settings.s3_bucket, Key=session["object_key"], UploadId=session["upload_id"])
    assert listed.get("Parts", []) == []


def test_checksums_are_required_by_default(strict: LiveServer) -> None:
    with strict.client() as client:
        response = client.post("/api/uploads", json={"file_name": "a.txt", "size": 10, "content_type": "text/plain"})
    assert response.status_code == 422
    assert response.json()["detail"] == "this service requires part checksums: give checksum_algorithm SHA256"


def test_files_over_the_size_limit_are_refused(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(max_file_size=10 * MiB)
    with server.client() as client:
        create_session(client, 10 * MiB)
        response = client.post("/api/uploads", json={"file_name": "big.bin", "size": 10 * MiB + 1})
    assert response.status_code == 413
    assert (
        response.json()["detail"] == f"the file is {10 * MiB + 1} bytes; the largest this service accepts is {10 * MiB}"
    )


def test_per_user_caps_on_uploads_and_bytes_in_progress(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(max_open_sessions_per_user=2, max_bytes_in_progress_per_user=30 * MiB)
    with server.client() as alice:
        first = create_session(alice, 10 * MiB)
        create_session(alice, 10 * MiB)
        third = alice.post("/api/uploads", json={"file_name": "3.bin", "size": 1})
        assert third.status_code == 429
        assert "2 uploads in progress" in third.json()["detail"]
        # Cancelling one frees its place; the bytes cap still counts what is in progress.
        assert alice.delete(f"/api/uploads/{first['session_id']}").status_code == 204
        over = alice.post("/api/uploads", json={"file_name": "big.bin", "size": 20 * MiB + 1})
        assert over.status_code == 429
        assert "more than the" in over.json()["detail"]
        create_session(alice, 20 * MiB)
    with server.client() as bob:  # caps are per user
        create_session(bob, 10 * MiB)


def _backdate(database: Database, session_id: str, **age: float) -> None:
    with database.sessions() as db:
        db.execute(
            update(UploadSession).where(UploadSession.id == session_id).values(created_at=utcnow() - timedelta(**age))
        )
        db.commit()


def test_url_requests_do_not_extend_a_sessions_life(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(session_max_age_seconds=3600, presign_ttl_seconds=3000)
    assert server.app is not None
    database: Database = server.app.state.database
    storage: Storage = server.app.state.storage
    with server.client() as client:
        session = create_session(client, 10, file_name="old.bin")
        sid = session["session_id"]
        _backdate(database, sid, seconds=3600 - 120)
        fresh = client.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [1]})
        assert fresh.status_code == 200
        # The URL's lifetime is cut to the session's remaining life, not the full presign TTL.
        expires = int(parse_qs(urlsplit(fresh.json()["urls"][0]["url"]).query)["X-Amz-Expires"][0])
        assert 60 <= expires <= 120
        # Active (it just asked for URLs), yet expired by the janitor once past its maximum age.
        assert expire_idle_sessions(database, storage, timedelta(days=7), max_age=timedelta(hours=1)) == []
        _backdate(database, sid, seconds=3601)
        gone = client.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [1]})
        assert gone.status_code == 410
        assert gone.json()["detail"] == "this upload is older than the service keeps uploads; start a new one"
        assert expire_idle_sessions(database, storage, timedelta(days=7), max_age=timedelta(hours=1)) == [sid]
        assert client.get(f"/api/uploads/{sid}").json()["status"] == "expired"


def test_the_bucket_aborts_forgotten_multipart_uploads(make_live_server: MakeLiveServer, s3: S3Client) -> None:
    """Set on start-up with the CORS rule. SeaweedFS stores the rule (and answers it back); whether it acts on it
    after N days cannot be observed in a test, so the janitor's hard maximum age is the guarantee."""
    server = make_live_server(session_max_age_seconds=2 * 86400)
    assert server.settings.abort_incomplete_days == 3
    rules = s3.get_bucket_lifecycle_configuration(Bucket=server.settings.s3_bucket)["Rules"]
    assert [(r["Status"], r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]) for r in rules] == [
        ("Enabled", 3)
    ]


def test_storage_signs_the_length_into_every_part_url(tmp_path: Path, seaweed: SeaweedService) -> None:
    storage = Storage(endpoint_url=seaweed.endpoint_url, bucket="any", credentials=seaweed.credentials)
    url = storage.presign_part("k", "u", 1, 60, content_length=123)
    assert parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"] == ["content-length;host"]
