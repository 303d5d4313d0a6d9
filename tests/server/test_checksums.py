"""Checksummed uploads: every part's SHA-256 is signed into its URL, verified by S3, and the composite checked."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from server.db import Database
from server.models import OutboxEvent, PartChecksum
from server.storage import Assembled, Storage
from server.uploads.reconcile import composite_sha256
from tests.support.live_server import LiveServer
from tests.support.uploads import create_session, part_bytes, put_part, sha256
from wire.plan import MiB

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PART = 5 * MiB


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def sign(client: httpx.Client, session_id: str, parts: dict[int, bytes]) -> dict[int, str]:
    response = client.post(
        f"/api/uploads/{session_id}/urls",
        json={"parts": [{"part_number": n, "checksum_sha256": b64sha(d)} for n, d in parts.items()]},
    )
    assert response.status_code == 200, response.text
    return {u["part_number"]: u["url"] for u in response.json()["urls"]}


def test_checksummed_upload_end_to_end(live_server: LiveServer, s3: S3Client) -> None:
    data = os.urandom(2 * PART + 999)
    with live_server.client() as client:
        session = create_session(client, len(data), part_size=PART, checksum_algorithm="SHA256")
        assert session["urls"] == [], "no URL can be signed before the client knows a part's checksum"
        sid = session["session_id"]
        parts = {n: part_bytes(data, PART, n) for n in (1, 2, 3)}
        urls = sign(client, sid, parts)
        etags = {}
        for n, chunk in parts.items():
            put = httpx.put(urls[n], content=chunk, headers={"x-amz-checksum-sha256": b64sha(chunk)})
            assert put.status_code == 200, put.text
            etags[n] = put.headers["etag"]
        done = client.post(
            f"/api/uploads/{sid}/complete",
            json={"parts": [{"part_number": n, "etag": e} for n, e in etags.items()]},
        )
        assert done.status_code == 200, done.text
        state = client.get(f"/api/uploads/{sid}").json()
    expected = composite_sha256([b64sha(parts[n]) for n in (1, 2, 3)])
    assert state["checksum_algorithm"] == "SHA256"
    assert state["checksum_sha256"] == expected
    body = s3.get_object(Bucket=live_server.settings.s3_bucket, Key=session["object_key"])["Body"].read()
    assert sha256(body) == sha256(data)


def test_damaged_bytes_are_refused_by_storage(live_server: LiveServer) -> None:
    data = os.urandom(PART + 10)
    with live_server.client() as client:
        session = create_session(client, len(data), part_size=PART, checksum_algorithm="SHA256")
        chunk = part_bytes(data, PART, 1)
        url = sign(client, session["session_id"], {1: chunk})[1]
    flipped = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
    put = httpx.put(url, content=flipped, headers={"x-amz-checksum-sha256": b64sha(chunk)})
    assert put.status_code == 400
    assert "<Code>BadDigest</Code>" in put.text
    # Without the signed header the URL is not valid at all.
    assert httpx.put(url, content=chunk).status_code == 403


def test_checksummed_session_wants_checksums(live_server: LiveServer) -> None:
    with live_server.client() as client:
        session = create_session(client, PART + 1, part_size=PART, checksum_algorithm="SHA256")
        sid = session["session_id"]
        bare = client.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [1]})
        assert bare.status_code == 422
        assert "checksummed" in bare.json()["detail"]
        for bad in ("not base64!", base64.b64encode(b"short").decode()):
            parts = [{"part_number": 1, "checksum_sha256": bad}]
            wrong = client.post(f"/api/uploads/{sid}/urls", json={"parts": parts})
            assert wrong.status_code == 422, wrong.text
        both = client.post(
            f"/api/uploads/{sid}/urls",
            json={"part_numbers": [1], "parts": [{"part_number": 1, "checksum_sha256": b64sha(b"x")}]},
        )
        assert both.status_code == 422


def test_composite_matches_s3_definition() -> None:
    parts = [b"a" * 10, b"b" * 3]
    raw = hashlib.sha256(hashlib.sha256(parts[0]).digest() + hashlib.sha256(parts[1]).digest()).digest()
    assert composite_sha256([b64sha(p) for p in parts]) == base64.b64encode(raw).decode() + "-2"


def test_complete_with_a_checksum_s3_did_not_verify_is_refused(live_server: LiveServer, s3: S3Client) -> None:
    """If our record of a part's checksum disagrees with what S3 verified, S3 refuses to assemble the object
    (BadDigest at completion): the server answers 409 with S3's code, and no object appears. (The composite check
    after completion is a second line of defence for stores that would not refuse.)"""
    assert live_server.app is not None
    database = live_server.app.state.database
    data = os.urandom(PART + 100)
    with live_server.client() as client:
        session = create_session(client, len(data), part_size=PART, checksum_algorithm="SHA256")
        sid = session["session_id"]
        parts = {n: part_bytes(data, PART, n) for n in (1, 2)}
        urls = sign(client, sid, parts)
        etags = {}
        for n, chunk in parts.items():
            put = httpx.put(urls[n], content=chunk, headers={"x-amz-checksum-sha256": b64sha(chunk)})
            etags[n] = put.headers["etag"]
        with database.sessions() as db:  # the record disagrees with what S3 verified
            db.merge(PartChecksum(session_id=sid, part_number=2, sha256=b64sha(b"other bytes")))
            db.commit()
        body = {"parts": [{"part_number": n, "etag": e} for n, e in etags.items()]}
        done = client.post(f"/api/uploads/{sid}/complete", json=body)
        assert done.status_code == 409, done.text
        assert done.json()["detail"]["code"] == "BadDigest"
        assert client.get(f"/api/uploads/{sid}").json()["status"] == "uploading"
    objects = s3.list_objects_v2(Bucket=live_server.settings.s3_bucket).get("Contents", [])
    assert session["object_key"] not in [o["Key"] for o in objects], "an unverified object never appears"


def test_a_composite_mismatch_fails_the_upload_and_announces_it(
    live_server: LiveServer, s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage reports a composite checksum other than the verified parts make: the client gets a 502 (not a 500),
    the object is deleted, the session is ``failed`` and an ``upload_failed`` event says so."""
    assert live_server.app is not None
    database: Database = live_server.app.state.database
    storage: Storage = live_server.app.state.storage
    real_complete = storage.complete

    def lying_complete(*args: Any, **kwargs: Any) -> Assembled:
        assembled = real_complete(*args, **kwargs)
        return Assembled(etag=assembled.etag, checksum_sha256=composite_sha256([b64sha(b"other bytes")]))

    monkeypatch.setattr(storage, "complete", lying_complete)
    data = os.urandom(PART + 7)
    with live_server.client() as client:
        session = create_session(client, len(data), part_size=PART, checksum_algorithm="SHA256")
        sid = session["session_id"]
        parts = {n: part_bytes(data, PART, n) for n in (1, 2)}
        urls = sign(client, sid, parts)
        etags = {n: put_part(urls[n], chunk, **{"x-amz-checksum-sha256": b64sha(chunk)}) for n, chunk in parts.items()}
        done = client.post(
            f"/api/uploads/{sid}/complete",
            json={"parts": [{"part_number": n, "etag": e} for n, e in etags.items()]},
        )
        assert done.status_code == 502, done.text
        assert "do not match the verified parts" in done.json()["detail"]["message"]
        assert client.get(f"/api/uploads/{sid}").json()["status"] == "failed"
    objects = s3.list_objects_v2(Bucket=live_server.settings.s3_bucket).get("Contents", [])
    assert session["object_key"] not in [o["Key"] for o in objects], "a mismatching object is not kept"
    with database.sessions() as db:
        events = list(db.scalars(select(OutboxEvent).where(OutboxEvent.session_id == sid)))
    assert [e.type for e in events] == ["upload_failed"]
    payload = json.loads(events[0].payload)
    assert payload["data"]["status"] == "failed" and payload["data"]["completed_at"] is None
