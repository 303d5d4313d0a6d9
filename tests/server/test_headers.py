"""Pages and API answers carry security headers; state-changing calls from another origin are refused."""

from __future__ import annotations

import httpx
import pytest

from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.uploads import create_session


@pytest.mark.parametrize("path", ["/", "/api/uploads", "/files/nope", "/sw.js", "/static/worker.mjs", "/api/me"])
def test_every_answer_has_the_security_headers(live_server: LiveServer, path: str) -> None:
    with live_server.client() as client:
        response = client.get(path)
    headers = response.headers
    csp = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert directives["worker-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    # Browsers PUT parts to the S3 endpoint: the only other origin they may connect to.
    assert directives["connect-src"] == f"'self' {live_server.settings.s3_endpoint_url}"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in headers  # plain http: HSTS would be ignored, and wrong


def test_hsts_under_https(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(public_origin="https://uploads.example.com")
    with server.client() as client:
        assert client.get("/api/uploads").headers["strict-transport-security"].startswith("max-age=")


def test_state_changing_calls_from_another_origin_are_refused(live_server: LiveServer) -> None:
    with live_server.client() as client:
        session = create_session(client, 1)
        sid = session["session_id"]
        evil = {"Origin": "https://evil.example"}
        for method, path, body in (
            ("POST", "/api/uploads", {"file_name": "a", "size": 1}),
            ("POST", f"/api/uploads/{sid}/urls", {"part_numbers": [1]}),
            ("DELETE", f"/api/uploads/{sid}", None),
            ("PUT", "/api/profile", {"email": "victim@example.com"}),
        ):
            refused = client.request(method, path, json=body, headers=evil)
            assert refused.status_code == 403, (method, path, refused.text)
            assert refused.json() == {"detail": "cross-origin request refused"}
        cross_site = client.delete(f"/api/uploads/{sid}", headers={"Sec-Fetch-Site": "cross-site"})
        assert cross_site.status_code == 403
        assert client.get(f"/api/uploads/{sid}").json()["status"] == "uploading"
        # Our own origin, and clients that send none (the terminal uploader), are served.
        own = {"Origin": live_server.settings.public_origin, "Sec-Fetch-Site": "same-origin"}
        assert client.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [1]}, headers=own).status_code == 200
        assert client.delete(f"/api/uploads/{sid}").status_code == 204
        # Reading is not state-changing: a GET with a foreign Origin is answered (CORS keeps the answer from it).
        assert client.get("/api/uploads", headers=evil).status_code == 200


def test_a_frame_cannot_embed_the_app(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.base_url}/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
