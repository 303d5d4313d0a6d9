"""Limits that hold: rate limits per identity and per address (429 + Retry-After), request bodies capped at the
ASGI layer (413), and 422 answers that never echo what was sent."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from server.identity import COOKIE_NAME
from tests.support.live_server import LiveServer, MakeLiveServer, isolated_settings
from tests.support.uploads import create_session


def _new_upload(client: httpx.Client) -> httpx.Response:
    return client.post("/api/uploads", json={"file_name": "a.bin", "size": 1})


def test_session_creation_is_rate_limited_per_user_and_per_address(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(rate_limit_create="3/minute")
    with server.client() as alice:
        for _ in range(3):
            assert _new_upload(alice).status_code == 201
        refused = _new_upload(alice)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["detail"].startswith("too many new uploads")
    # Another identity from the same address is refused too: the address has its own count.
    with server.client() as bob:
        assert _new_upload(bob).status_code == 429


def test_url_requests_are_rate_limited(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(rate_limit_urls="2/minute")
    with server.client() as client:
        session = create_session(client, 1)
        ask = lambda: client.post(f"/api/uploads/{session['session_id']}/urls", json={"part_numbers": [1]})  # noqa: E731
        assert [ask().status_code for _ in range(3)] == [200, 200, 429]


def test_minting_anonymous_identities_is_rate_limited_per_address(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(rate_limit_new_identity="2/minute")
    minted = []
    for _ in range(3):
        with server.client() as fresh:
            response = fresh.get("/api/uploads")
            minted.append((response.status_code, COOKIE_NAME in fresh.cookies))
    assert minted == [(200, True), (200, True), (429, False)]


def test_known_users_are_not_counted_as_new_identities(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(rate_limit_new_identity="1/minute")
    with server.client() as user:
        for _ in range(5):
            assert user.get("/api/uploads").status_code == 200


def test_rate_limit_settings_are_checked_at_start() -> None:
    with pytest.raises(ValueError, match="not a rate limit"):
        isolated_settings(rate_limit_create="lots")


def test_a_large_body_is_refused_with_413_before_it_is_parsed(live_server: LiveServer) -> None:
    cap = live_server.settings.max_request_body_bytes
    big = b'{"file_name": "' + b"x" * (10 * 1000 * 1000) + b'", "size": 1}'
    with live_server.client() as client:
        response = client.post("/api/uploads", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body too large (at most {cap} bytes)"}
    assert len(response.content) < 200


def test_a_chunked_body_is_cut_off_at_the_cap(live_server: LiveServer) -> None:
    """No Content-Length to check up front: the count of received bytes trips the cap."""

    def chunks() -> Iterator[bytes]:
        yield b'{"file_name": "'
        for _ in range(40):
            yield b"x" * 256 * 1024
        yield b'", "size": 1}'

    with live_server.client() as client:
        response = client.post("/api/uploads", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_lying_content_length_is_refused(live_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live_server.settings.port), timeout=10) as sock:
        sock.sendall(b"POST /api/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.split(b" ", 2)[1] in (b"400", b"413")


def test_422_answers_do_not_echo_the_input(live_server: LiveServer) -> None:
    name = "y" * 900_000  # under the body cap, over the field's limit
    with live_server.client() as client:
        response = client.post("/api/uploads", json={"file_name": name, "size": 1})
    assert response.status_code == 422
    assert len(response.content) < 1000
    assert "yyyy" not in response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "file_name"]
    assert problem["type"] == "string_too_long"
