"""Tokens: one derived key per purpose, every token expires, file links can be revoked, and no token is logged."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from server import log_redaction
from server.clock import utcnow
from server.db import Database
from server.identity import COOKIE_MAX_AGE, COOKIE_NAME, Identity
from server.links import FileLinks
from server.tokens import Purpose, TokenSigner, derive_key
from tests.support.live_server import LiveServer
from tests.support.uploads import create_session, upload_all


def test_each_purpose_has_its_own_key_and_tokens_do_not_cross() -> None:
    keys = {derive_key("master", purpose) for purpose in Purpose}
    assert len(keys) == len(Purpose)
    assert b"master" not in b"".join(keys)
    upload = TokenSigner("master", Purpose.UPLOAD, 60).sign("abc")
    for other in set(Purpose) - {Purpose.UPLOAD}:
        assert TokenSigner("master", other, 60).verify(upload) is None
    assert TokenSigner("other-master", Purpose.UPLOAD, 60).verify(upload) is None
    assert TokenSigner("master", Purpose.UPLOAD, 60).verify(upload) is not None


def test_tokens_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = TokenSigner("master", Purpose.FILE_LINK, max_age=3600)
    token = signer.sign("session")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3599)
    assert signer.verify(token) is not None
    monkeypatch.setattr(time, "time", lambda: now + 3602)
    assert signer.verify(token) is None


def test_identity_cookie_and_upload_token_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    identity = Identity("master", upload_token_max_age=7200)
    user, cookie = identity.new_user()
    token = identity.upload_token("session-1")
    assert identity.user_of(cookie) == user and identity.grants(token, "session-1")
    assert not identity.grants(cookie, user)  # a cookie is no upload token, even for a session named like the user
    assert identity.renewal(cookie) is None  # fresh: nothing to renew
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 2 * 86400)
    assert identity.renewal(cookie) is not None  # in use for two days: re-signed so it never reaches its age
    monkeypatch.setattr(time, "time", lambda: now + 7300)
    assert not identity.grants(token, "session-1")
    monkeypatch.setattr(time, "time", lambda: now + COOKIE_MAX_AGE + 10)
    assert identity.user_of(cookie) is None


def test_a_legacy_unexpiring_cookie_is_replaced(live_server: LiveServer) -> None:
    """Cookies signed before tokens expired (itsdangerous ``Signer`` with the master key) are not accepted."""
    from itsdangerous import Signer

    legacy = Signer(live_server.settings.secret_key or "", salt="smartcat.identity.uid").sign("old-user").decode()
    with live_server.client(cookies={COOKIE_NAME: legacy}) as http:
        assert http.get("/api/me").json()["user"] != "old-user"


def test_file_links_work_until_revoked(live_server: LiveServer) -> None:
    assert live_server.app is not None
    links: FileLinks = live_server.app.state.notifications.links
    database: Database = live_server.app.state.database
    with live_server.client() as owner:
        session = create_session(owner, 3, file_name="report.pdf")
        sid = session["session_id"]
        owner.post(f"/api/uploads/{sid}/complete", json={"parts": upload_all(owner, session, b"abc")})
        old_link = links.absolute(sid).removeprefix(live_server.base_url)
        with live_server.client() as phone:
            assert phone.get(old_link).status_code == 200
            assert phone.get(old_link.replace("token=", "token=x")).status_code == 404
            # Someone else cannot revoke the owner's links.
            assert phone.delete(f"/api/files/{sid}/links").status_code == 404
            assert phone.get(old_link).status_code == 200
            assert owner.delete(f"/api/files/{sid}/links").status_code == 204
            assert phone.get(old_link).status_code == 404
            assert owner.get(f"/files/{sid}").status_code == 200  # the owner still sees it
            # Links issued after a revocation work (tokens are signed to the second: revoke as of 5 s ago).
            with database.sessions() as db:
                links.revoke_all(db, sid, now=utcnow() - timedelta(seconds=5))
            assert phone.get(links.absolute(sid).removeprefix(live_server.base_url)).status_code == 200


def test_access_log_lines_carry_no_tokens(caplog: pytest.LogCaptureFixture, live_server: LiveServer) -> None:
    """uvicorn's access logger gets the path with its query string as an argument; the app's filter redacts it."""
    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, log_redaction.RedactTokens) for f in access.filters)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/files/abc?token=SeCrEt.sig&x=1", "1.1", 200
        )
    [line] = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert "SeCrEt" not in line
    assert "/files/abc?token=[redacted]&x=1" in line
