"""Behind Smartcat's login, end to end in Chromium: the host's JWT (a cookie the host set) is the identity.

The server runs with IDENTITY_MODE=jwt against a real JWKS endpoint served by the test (keys made here), with the
production defaults for checksums and the security headers (CSP) on: the engine in the SharedWorker uploads with
the host's token, the session belongs to (tenant, user), and without a valid token the user sees why it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, expect

from tests.support.host_issuer import HostIssuer
from wire.plan import MiB

from .conftest import AppUnderTest, Browser, open_app, random_file, sha256_file
from .ui import pick


def _sign_in(context: BrowserContext, app: AppUnderTest, token: str) -> None:
    """What Smartcat's login does: a cookie on the app's site carrying the JWT (HttpOnly, like a session)."""
    context.add_cookies(
        [
            {
                "name": app.server.settings.jwt_cookie_name,
                "value": token,
                "url": app.server.base_url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )


def _sessions(app: AppUnderTest, token: str) -> list[dict[str, object]]:
    response = httpx.get(f"{app.server.base_url}/api/uploads", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    sessions: list[dict[str, object]] = response.json()
    return sessions


def test_a_signed_in_user_uploads_and_the_file_is_theirs(
    make_app: Callable[..., AppUnderTest], browser: Browser, issuer: HostIssuer, tmp_path: Path
) -> None:
    app = make_app(**issuer.settings(), require_checksums=True)
    assert browser.context is not None
    alice = issuer.token("alice", "acme")
    _sign_in(browser.context, app, alice)
    source = random_file(tmp_path / "contract-de.pdf", 12 * MiB)

    page = open_app(browser.context, app)
    pick(page, source)
    upload = page.locator(".upload", has_text=source.name)
    expect(upload).to_have_attribute("data-phase", "completed", timeout=120_000)
    assert app.only_object_sha256() == sha256_file(source)

    # The session is (acme, alice)'s: she sees it; the same user id in another tenant does not.
    [mine] = _sessions(app, alice)
    assert mine["file_name"] == source.name and mine["status"] == "completed"
    assert _sessions(app, issuer.token("alice", "globex")) == []
    assert "uid" not in {c["name"] for c in browser.context.cookies()}  # no anonymous identity in jwt mode


def test_without_a_valid_token_the_user_is_told_to_sign_in(
    make_app: Callable[..., AppUnderTest], browser: Browser, issuer: HostIssuer, tmp_path: Path
) -> None:
    app = make_app(**issuer.settings(), require_checksums=True)
    assert browser.context is not None
    _sign_in(browser.context, app, issuer.token("bob", "acme", aud="another-app"))
    source = random_file(tmp_path / "glossary.xlsx", 1 * MiB)

    page = open_app(browser.context, app)
    pick(page, source)
    upload = page.locator(".upload", has_text=source.name)
    expect(upload).to_have_attribute("data-phase", "failed", timeout=60_000)
    expect(upload.locator(".upload-status")).to_contain_text("sign in again")
    assert app.objects() == [] and app.multipart_uploads() == []
