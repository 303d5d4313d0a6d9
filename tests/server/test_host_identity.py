"""IDENTITY_MODE=jwt: the host application's JWT says who calls, verified against a real JWKS endpoint."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError
from sqlalchemy import select

from server.db import Database
from server.models import UploadSession
from tests.support.host_issuer import AUDIENCE, ISSUER, HostIssuer, SigningKey
from tests.support.live_server import LiveServer, MakeLiveServer, isolated_settings
from tests.support.uploads import create_session


@pytest.fixture
def server(issuer: HostIssuer, make_live_server: MakeLiveServer) -> LiveServer:
    return make_live_server(**issuer.settings())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _owners(server: LiveServer) -> list[str]:
    database = Database(server.settings.resolved_database_url)
    try:
        with database.sessions() as db:
            return list(db.scalars(select(UploadSession.owner_id)))
    finally:
        database.dispose()


def test_sessions_belong_to_tenant_and_user(server: LiveServer, issuer: HostIssuer) -> None:
    with server.client(headers=_bearer(issuer.token("alice", "acme"))) as alice:
        session = create_session(alice, 10)
        assert [s["session_id"] for s in alice.get("/api/uploads").json()] == [session["session_id"]]
        assert alice.get("/api/me").json() == {
            "user": "alice",
            "tenant": "acme",
            "roles": [],
            "is_admin": False,
            "from_host": True,
        }
        assert "uid" not in alice.cookies  # no anonymous identity is minted in jwt mode
    assert _owners(server) == ["h:acme:alice"]
    # The same user id in another tenant, and another user of the same tenant, see nothing of it.
    for user, tenant in (("alice", "globex"), ("bob", "acme")):
        with server.client(headers=_bearer(issuer.token(user, tenant))) as other:
            assert other.get(f"/api/uploads/{session['session_id']}").status_code == 404
            assert other.get("/api/uploads").json() == []
            # Not even with the session's upload token: the host, not a token, says who the caller is.
            with_token = other.get(
                f"/api/uploads/{session['session_id']}", headers={"X-Upload-Token": session["upload_token"]}
            )
            assert with_token.status_code == 404


def test_the_token_may_come_in_the_named_cookie(server: LiveServer, issuer: HostIssuer) -> None:
    with server.client(cookies={server.settings.jwt_cookie_name: issuer.token("carol", "acme")}) as carol:
        assert carol.get("/api/me").json()["user"] == "carol"


def test_admin_role_claim_marks_support_users(server: LiveServer, issuer: HostIssuer) -> None:
    admin = issuer.token("dora", "acme", roles=["uploads-admin", "editor"])
    with server.client(headers=_bearer(admin)) as http:
        assert http.get("/api/me").json()["is_admin"] is True
    with server.client(headers=_bearer(issuer.token("eve", "acme", roles="editor"))) as http:
        assert http.get("/api/me").json()["is_admin"] is False


def _forge_none(issuer: HostIssuer) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': issuer.current.kid})}.{part(issuer.claims('mallory'))}."


def _forge_hs256_with_public_key(issuer: HostIssuer) -> str:
    """The RS/HS confusion attack: HMAC keyed with the (public) RSA key, hoping the server verifies with it."""
    public_pem = issuer.current.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": issuer.current.kid}
    signing_input = (
        base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(json.dumps(issuer.claims("mallory")).encode()).rstrip(b"=")
    )
    import hmac
    from hashlib import sha256

    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


@pytest.mark.parametrize(
    "forgery",
    [
        "expired",
        "wrong audience",
        "wrong issuer",
        "alg none",
        "HS256 keyed with the public key",
        "signed by an unknown key",
        "no kid",
        "no tenant",
        "garbage",
    ],
)
def test_forged_or_foreign_tokens_are_refused(server: LiveServer, issuer: HostIssuer, forgery: str) -> None:
    stranger = SigningKey("key-1")  # same kid as the host's, another private key
    token = {
        "expired": lambda: issuer.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "wrong audience": lambda: issuer.token(aud="another-app"),
        "wrong issuer": lambda: issuer.token(iss="https://evil.test"),
        "alg none": lambda: _forge_none(issuer),
        "HS256 keyed with the public key": lambda: _forge_hs256_with_public_key(issuer),
        "signed by an unknown key": lambda: issuer.token(key=stranger),
        "no kid": lambda: jwt.encode(issuer.claims(), issuer.current.private, algorithm="RS256"),
        "no tenant": lambda: issuer.token(tenant=None),
        "garbage": lambda: "not.a.jwt",
    }[forgery]()
    with server.client(headers=_bearer(token)) as http:
        response = http.post("/api/uploads", json={"file_name": "x.txt", "size": 1, "content_type": "text/plain"})
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert token not in response.text
        assert http.get("/api/uploads").status_code == 401
    assert _owners(server) == []


def test_no_token_is_401_not_an_anonymous_identity(server: LiveServer) -> None:
    with server.client() as http:
        response = http.get("/api/uploads")
        assert response.status_code == 401
        assert "uid" not in http.cookies


def test_keys_are_cached_and_a_rotation_is_picked_up(server: LiveServer, issuer: HostIssuer) -> None:
    first = issuer.token("frank", "acme")
    before = issuer.fetches
    with server.client(headers=_bearer(first)) as http:
        for _ in range(5):
            assert http.get("/api/me").status_code == 200
    assert issuer.fetches - before <= 1  # cached after the first look

    issuer.rotate()
    rotated = issuer.token("frank", "acme")
    with server.client(headers=_bearer(rotated)) as http:
        assert http.get("/api/me").status_code == 200  # unknown kid: the set is refetched, the new key found
    with server.client(headers=_bearer(first)) as http:
        # The retired key's tokens: its kid is gone from the refetched set.
        assert http.get("/api/me").status_code == 401


def test_unknown_kids_cannot_make_the_server_hammer_the_host(
    issuer: HostIssuer, make_live_server: MakeLiveServer
) -> None:
    server = make_live_server(**{**issuer.settings(), "jwt_jwks_min_refresh_seconds": 3600})
    with server.client(headers=_bearer(issuer.token())) as http:
        assert http.get("/api/me").status_code == 200
    before = issuer.fetches
    for n in range(5):
        with server.client(headers=_bearer(issuer.token(key=SigningKey(f"random-{n}")))) as http:
            assert http.get("/api/me").status_code == 401
    assert issuer.fetches - before <= 1


def test_a_shared_secret_verifies_hs256_only(make_live_server: MakeLiveServer) -> None:
    secret = "s" * 64
    server = make_live_server(
        identity_mode="jwt", jwt_secret=secret, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_tenant_claim=""
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "gina", "exp": int(time.time()) + 60}
    with server.client(headers=_bearer(jwt.encode(claims, secret, algorithm="HS256"))) as http:
        assert http.get("/api/me").json()["tenant"] == ""
    with server.client(headers=_bearer(jwt.encode(claims, secret, algorithm="HS512"))) as http:
        assert http.get("/api/me").status_code == 401
    with server.client(headers=_bearer(jwt.encode(claims, "t" * 64, algorithm="HS256"))) as http:
        assert http.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jwt_audience": AUDIENCE}, "JWT_ISSUER"),
        ({"jwt_issuer": ISSUER}, "JWT_AUDIENCE"),
        ({"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}, "exactly one of JWT_JWKS_URL and JWT_SECRET"),
        (
            {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_jwks_url": "http://h/j", "jwt_algorithms": "HS256"},
            "HMAC algorithms",
        ),
        (
            {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_jwks_url": "http://h/j", "jwt_algorithms": "none"},
            "'none'",
        ),
        ({"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_secret": "short"}, "at least 32 bytes"),
    ],
)
def test_incomplete_jwt_settings_refuse_to_start(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        isolated_settings(identity_mode="jwt", **values)


def test_anonymous_users_are_never_admins(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert http.get("/api/me").json() == {
            "user": http.get("/api/me").json()["user"],
            "tenant": "",
            "roles": [],
            "is_admin": False,
            "from_host": False,
        }


def test_a_token_is_not_echoed_in_a_refusal(server: LiveServer, issuer: HostIssuer) -> None:
    token = issuer.token(aud="another-app")
    response = httpx.get(f"{server.base_url}/api/me", headers=_bearer(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "sign in again: token is for another audience"}
