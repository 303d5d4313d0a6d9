"""Drift check: the real server's answers parse with the wire types, and the wire request bodies are accepted.

Only HTTP is used (no server imports), so this keeps checking the contract while the server's modules move.
"""

from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest

from tests.support.live_server import LiveServer
from wire.api import (
    CompletedPart,
    CompletedUpload,
    CompleteRequest,
    CreatedSession,
    CreateSessionRequest,
    PartChecksum,
    PresignUrlsRequest,
    SessionState,
    SignedUrls,
)

PART = 5 * 1024 * 1024  # the S3 minimum: the smallest real multipart upload


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_checksummed_upload_speaks_the_wire_types(live_server: LiveServer) -> None:
    """The path the engine takes: create with SHA256, sign URLs per checksum, PUT, read state, complete."""
    data = os.urandom(PART + 1000)
    with live_server.client() as client:
        request = CreateSessionRequest(
            file_name="drift.bin",
            size=len(data),
            content_type="application/octet-stream",
            fingerprint="drift-fp",
            checksum_algorithm="SHA256",
            part_size=PART,
        )
        answer = client.post("/api/uploads", json=request.to_json())
        assert answer.status_code == 201, answer.text
        session = CreatedSession.from_json(answer.json())
        assert (session.part_size, session.part_count) == (PART, 2)
        assert session.status == "uploading" and session.urls == () and session.upload_token
        base = f"/api/uploads/{session.session_id}"

        chunks = {1: data[:PART], 2: data[PART:]}
        presign = PresignUrlsRequest(tuple(PartChecksum(n, b64sha(chunk)) for n, chunk in chunks.items()))
        answer = client.post(f"{base}/urls", json=presign.to_json())
        assert answer.status_code == 200, answer.text
        signed = SignedUrls.from_json(answer.json())
        assert [u.part_number for u in signed.urls] == [1, 2] and signed.expires_at > 0
        assert signed.server_now is not None, "the server says when it signed: lifetimes judged on its clock"
        assert signed.expires_at - signed.server_now == pytest.approx(live_server.settings.presign_ttl_seconds)

        etags: dict[int, str] = {}
        for url in signed.urls:
            chunk = chunks[url.part_number]
            put = httpx.put(url.url, content=chunk, headers={"x-amz-checksum-sha256": b64sha(chunk)}, timeout=60.0)
            assert put.status_code == 200, put.text
            etags[url.part_number] = put.headers["etag"]

    # A client that lost its cookie resumes with the token: the state answer is read as the engine reads it.
    with live_server.client() as stranger:
        answer = stranger.get(base, headers={"X-Upload-Token": session.upload_token})
        assert answer.status_code == 200, answer.text
        state = SessionState.from_json(answer.json())
        assert state.session_id == session.session_id and state.status == "uploading" and state.etag is None
        assert sorted((p.part_number, p.size) for p in state.parts) == [(1, PART), (2, 1000)]
        assert state.bytes_on_server == len(data)

        complete = CompleteRequest(tuple(CompletedPart(n, etag) for n, etag in sorted(etags.items())))
        answer = stranger.post(
            f"{base}/complete", json=complete.to_json(), headers={"X-Upload-Token": session.upload_token}
        )
        assert answer.status_code == 200, answer.text
        done = CompletedUpload.from_json(answer.json())
        assert (done.session_id, done.status, done.object_key, done.size) == (
            session.session_id,
            "completed",
            session.object_key,
            len(data),
        )
        assert done.etag

        answer = stranger.get(base, headers={"X-Upload-Token": session.upload_token})
        assert answer.status_code == 200, answer.text
        finished = SessionState.from_json(answer.json())
        assert (finished.status, finished.etag, finished.parts) == ("completed", done.etag, ())


def test_first_batch_of_urls_parses(live_server: LiveServer) -> None:
    """Without checksums the create answer carries URLs: the smallest request body is accepted and its URLs read."""
    with live_server.client() as client:
        answer = client.post("/api/uploads", json=CreateSessionRequest("plain.bin", 3 * PART).to_json())
        assert answer.status_code == 201, answer.text
        session = CreatedSession.from_json(answer.json())
        assert [u.part_number for u in session.urls] == list(range(1, session.part_count + 1))
        assert all(u.url.startswith("http") for u in session.urls)
        assert client.delete(f"/api/uploads/{session.session_id}").status_code == 204
