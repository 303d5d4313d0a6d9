"""JSON log lines: each request's lines carry its id (echoed to the caller), the session and a hashed user, and
never a token, a bearer credential or an email address."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from server import logs
from tests.support.live_server import LiveServer
from tests.support.uploads import create_session

TOKEN = "s3cr3t-t0ken-value"
EMAIL = "alice.smith@example.com"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@contextmanager
def _captured() -> Iterator[list[dict[str, Any]]]:
    """Every line the app and uvicorn's access log write meanwhile, parsed (each must be one JSON object)."""
    stream = io.StringIO()
    handler = logs.handler(stream)
    watched = [logging.getLogger(), logging.getLogger("uvicorn.access")]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        for logger, level in zip(watched, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def _access_lines(lines: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "uvicorn.access" and path in line["message"]]


def test_a_request_line_has_its_id_session_and_hashed_user(live_server: LiveServer) -> None:
    with live_server.client() as client:
        session = create_session(client, 10)
        user = client.get("/api/me").json()["user"]
        sid = session["session_id"]
        with _captured() as lines:
            answer = client.get(f"/api/uploads/{sid}", params={"token": TOKEN}, headers={"X-Request-ID": "support-42"})
            assert answer.status_code == 200
            assert answer.headers["X-Request-ID"] == "support-42"
        [line] = _access_lines(lines, f"/api/uploads/{sid}")
        assert line["request_id"] == "support-42"
        assert line["session_id"] == sid
        assert re.fullmatch(r"[0-9a-f]{16}", line["user"])
        assert line["user"] == logs.user_hash(user)
        assert {"time", "level", "logger", "message"} <= set(line)
        text = json.dumps(lines)
        assert TOKEN not in text and user not in text


def test_an_implausible_request_id_is_replaced(live_server: LiveServer) -> None:
    with live_server.client() as client:
        forged = 'x" level=ERROR injected'
        answer = client.get("/healthz", headers={"X-Request-ID": forged})
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])
    with live_server.client() as client:
        first, second = (client.get("/healthz").headers["X-Request-ID"] for _ in range(2))
    assert first != second


def test_secrets_and_addresses_never_reach_a_line() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("server.test_logs")
    logger.addHandler(logs.handler(stream))
    logger.propagate = False
    try:
        logger.warning("email for %s refused: 550 <%s> unknown", "user-1", EMAIL)
        logger.warning("header was Authorization: Bearer %s", TOKEN)
        logger.warning("token %s", JWT)
        logger.warning("GET /files/x?token=%s&x=1", TOKEN)
        try:
            raise RuntimeError(f"SMTP said: recipient {EMAIL} refused")
        except RuntimeError as error:
            logger.exception("send failed: %s", error)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 5
    assert EMAIL not in text and TOKEN not in text and JWT not in text
    assert lines[0]["message"] == "email for user-1 refused: 550 <[email]> unknown"
    assert "[redacted]" in lines[1]["message"] and "[redacted]" in lines[2]["message"]
    assert "RuntimeError" in lines[4]["exc_info"]
