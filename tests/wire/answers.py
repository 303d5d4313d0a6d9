"""Answers as the server sends them today, to break one field at a time in tests."""

from __future__ import annotations

from typing import Any


def created(**changes: Any) -> dict[str, Any]:
    """A ``POST /api/uploads`` answer with ``changes`` applied (a change to None deletes the field)."""
    body: dict[str, Any] = {
        "session_id": "s1",
        "object_key": "uploads/u/s1",
        "upload_id": "up1",
        "part_size": 8388608,
        "part_count": 2,
        "status": "uploading",
        "urls": [{"part_number": 1, "url": "http://s3/1"}, {"part_number": 2, "url": "http://s3/2"}],
        "urls_expire_at": 1700000000.5,
        "upload_token": "tok",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def state(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": "s1",
        "file_name": "a.bin",
        "size": 10,
        "content_type": "application/octet-stream",
        "fingerprint": "",
        "object_key": "uploads/u/s1",
        "upload_id": "up1",
        "part_size": 5242880,
        "part_count": 1,
        "status": "uploading",
        "etag": None,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "completed_at": None,
        "parts": [{"part_number": 1, "etag": '"abc"', "size": 10}],
        "bytes_on_server": 10,
    }
    body.update(changes)
    return body
