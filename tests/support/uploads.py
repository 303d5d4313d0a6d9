"""Small helpers that drive the upload API the way a client does (create, PUT parts to S3, complete)."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

MiB = 1024 * 1024


def create_session(client: httpx.Client, size: int, **fields: Any) -> dict[str, Any]:
    """POST /api/uploads and return the 201 body (fails the test on any other status)."""
    body: dict[str, Any] = {"file_name": fields.pop("file_name", "file.bin"), "size": size, **fields}
    response = client.post("/api/uploads", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def put_part(url: str, data: bytes, **headers: str) -> str:
    """PUT one part's bytes to its presigned URL, straight to S3; return the ETag S3 gave it."""
    response = httpx.put(url, content=data, headers=headers, timeout=60.0)
    assert response.status_code == 200, f"PUT to S3 failed: {response.status_code} {response.text}"
    return response.headers["etag"]


def part_bytes(data: bytes, part_size: int, number: int) -> bytes:
    return data[(number - 1) * part_size : number * part_size]


def upload_all(client: httpx.Client, session: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    """Send every part of ``data`` (asking for more URLs when needed); return the parts list for complete."""
    count, size = int(session["part_count"]), int(session["part_size"])
    urls = {u["part_number"]: u["url"] for u in session["urls"]}
    missing = [n for n in range(1, count + 1) if n not in urls]
    for start in range(0, len(missing), 100):
        response = client.post(
            f"/api/uploads/{session['session_id']}/urls", json={"part_numbers": missing[start : start + 100]}
        )
        assert response.status_code == 200, response.text
        urls.update({u["part_number"]: u["url"] for u in response.json()["urls"]})
    return [{"part_number": n, "etag": put_part(urls[n], part_bytes(data, size, n))} for n in range(1, count + 1)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
