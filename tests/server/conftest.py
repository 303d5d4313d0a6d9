"""Fixtures of the server suites beyond tests/conftest.py's."""

from tests.support.host_issuer import issuer  # noqa: F401 - the host's JWKS and tokens (IDENTITY_MODE=jwt suites)
