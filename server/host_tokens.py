"""JWTs issued by the host application (Smartcat): who the caller is when ``IDENTITY_MODE=jwt``.

Verified with PyJWT against the host's JWKS (keys cached; an unknown ``kid`` refetches the set, which is how a key
rotation is picked up, at most once per ``JWT_JWKS_MIN_REFRESH_SECONDS`` so forged ``kid`` values cannot make us
hammer the host) or against a shared HMAC secret. Issuer, audience, expiry and the algorithm are always checked; the
accepted algorithms come from the settings and never mix HMAC with public keys (the RS/HS confusion attack) nor
allow ``none``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient

from server.settings import Settings

#: Longest user or tenant id accepted: percent-encoded in an owner key, both fit its column (``OWNER_KEY_LENGTH``).
MAX_ID_LENGTH = 128


class InvalidHostToken(Exception):
    """The token is missing, malformed, forged, expired, or not meant for us; the message says which (no secrets)."""


@dataclass(frozen=True, slots=True)
class HostClaims:
    user: str
    tenant: str
    roles: frozenset[str]


class HostTokenVerifier:
    """Checks a host-issued JWT and reads the user, tenant and roles from the configured claims."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._algorithms = list(settings.jwt_algorithms)
        self._secret = settings.jwt_secret
        self._jwks = (
            PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=settings.jwt_jwks_cache_seconds, timeout=5)
            if settings.jwt_jwks_url
            else None
        )
        self._refresh_lock = threading.Lock()
        self._last_refresh = 0.0

    def verify(self, token: str) -> HostClaims:
        s = self._settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidHostToken("malformed token") from error
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise InvalidHostToken(f"algorithm {str(algorithm)[:20]!r} is not accepted")
        key: PyJWK | str = self._public_key(header) if self._jwks is not None else str(self._secret)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_seconds,
                options={"require": ["exp", "iss", "aud", s.jwt_user_claim]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidHostToken("token expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidHostToken("token is for another audience") from error
        except jwt.InvalidIssuerError as error:
            raise InvalidHostToken("token is from another issuer") from error
        except jwt.PyJWTError as error:
            raise InvalidHostToken(f"token refused: {type(error).__name__}") from error
        return self._read(claims)

    def _public_key(self, header: Mapping[str, Any]) -> PyJWK:
        """The JWKS key named by the token's ``kid``; an unknown one refetches the set (rotation), rate-limited."""
        assert self._jwks is not None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidHostToken("token names no key (kid)")
        try:
            key = self._find(kid, refresh=False)
            if key is None and self._may_refresh():
                key = self._find(kid, refresh=True)
        except jwt.PyJWKClientError as error:
            raise InvalidHostToken(f"signing keys unavailable: {error}") from error
        if key is None:
            raise InvalidHostToken("token is signed with an unknown key")
        if key.algorithm_name != header.get("alg"):
            raise InvalidHostToken("token algorithm does not match its key")
        return key

    def _find(self, kid: str, *, refresh: bool) -> PyJWK | None:
        assert self._jwks is not None
        keys = self._jwks.get_signing_keys(refresh=refresh)
        return next((k for k in keys if k.key_id == kid), None)

    def _may_refresh(self) -> bool:
        with self._refresh_lock:
            now = time.monotonic()
            if now - self._last_refresh < self._settings.jwt_jwks_min_refresh_seconds:
                return False
            self._last_refresh = now
            return True

    def _read(self, claims: Mapping[str, Any]) -> HostClaims:
        s = self._settings
        user = _identifier(claims.get(s.jwt_user_claim), s.jwt_user_claim)
        tenant = _identifier(claims.get(s.jwt_tenant_claim), s.jwt_tenant_claim) if s.jwt_tenant_claim else ""
        raw_roles = claims.get(s.jwt_roles_claim, [])
        if isinstance(raw_roles, str):
            roles = frozenset(raw_roles.split())
        elif isinstance(raw_roles, list) and all(isinstance(r, str) for r in raw_roles):
            roles = frozenset(raw_roles)
        else:
            raise InvalidHostToken(f"claim {s.jwt_roles_claim!r} is not a list of strings")
        return HostClaims(user=user, tenant=tenant, roles=roles)


def _identifier(value: object, claim: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise InvalidHostToken(f"claim {claim!r} is missing or not an id")
    return value
