"""A stand-in for the host application's token issuer: real keys made here, a real JWKS endpoint on 127.0.0.1.

It serves ``/.well-known/jwks.json`` over HTTP (counting fetches, so tests can see the cache and the rotation
refetch) and signs JWTs with PyJWT the way a host would (RS256 with a ``kid``), plus the forgeries tests need.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

ISSUER = "https://smartcat.test"
AUDIENCE = "smartcat-uploads"


@dataclass
class SigningKey:
    kid: str
    private: RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}


class HostIssuer:
    """Publishes a key set and issues tokens; ``rotate()`` starts signing with a new key and drops the old one."""

    def __init__(self) -> None:
        self.keys = [SigningKey("key-1")]
        self.fetches = 0
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                with issuer._lock:
                    issuer.fetches += 1
                    body = json.dumps({"keys": [k.jwk() for k in issuer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="jwks", daemon=True)
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self) -> SigningKey:
        """A new signing key replaces the published set (the old key's tokens stop verifying)."""
        with self._lock:
            new = SigningKey(f"key-{len(self.keys) + 1}-{int(time.time())}")
            self.keys = [new]
        return new

    def claims(self, user: str = "user-1", tenant: str = "tenant-1", **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user,
            "tenant_id": tenant,
            "roles": [],
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, user: str = "user-1", tenant: str = "tenant-1", *, key: SigningKey | None = None, **claims: Any
    ) -> str:
        """A token as the host issues it (RS256, with the signing key's ``kid``)."""
        key = key or self.current
        return jwt.encode(self.claims(user, tenant, **claims), key.private, algorithm="RS256", headers={"kid": key.kid})

    def settings(self) -> dict[str, Any]:
        """Server settings that trust this issuer (``make_live_server(**issuer.settings())``)."""
        return {
            "identity_mode": "jwt",
            "jwt_jwks_url": self.jwks_url,
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "jwt_jwks_min_refresh_seconds": 0,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[HostIssuer]:
    """A running issuer for a test module (import this fixture where it is used); tests that rotate its keys share
    the rotation with the module's later tests."""
    host = HostIssuer()
    try:
        yield host
    finally:
        host.close()
