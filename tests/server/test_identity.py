"""The anonymous ``uid`` cookie: issued once, kept while valid, replaced when forged."""

from __future__ import annotations

import httpx

from server.identity import COOKIE_NAME, Identity
from tests.support.live_server import LiveServer
from tests.support.uploads import create_session


def _set_cookie_headers(response: httpx.Response) -> list[str]:
    return [value for value in response.headers.get_list("set-cookie") if value.startswith(f"{COOKIE_NAME}=")]


def test_first_request_issues_a_signed_cookie(live_server: LiveServer) -> None:
    with live_server.client() as http:
        first = http.get("/api/uploads")
        assert first.status_code == 200
        [header] = _set_cookie_headers(first)
        attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
        assert {"httponly", "path", "max-age", "samesite"} <= attributes
        assert "samesite=lax" in header.lower() and "path=/" in header.lower()
        assert "secure" not in attributes  # plain-http origin
        value = http.cookies[COOKIE_NAME]
        assert "." in value  # user id . signature

        # Kept: no new cookie, same user (sees its own sessions).
        session = create_session(http, 1)
        again = http.get("/api/uploads")
        assert _set_cookie_headers(again) == []
        assert [s["session_id"] for s in again.json()] == [session["session_id"]]
        assert http.cookies[COOKIE_NAME] == value


def test_tampered_cookie_is_replaced_and_sees_nothing(live_server: LiveServer) -> None:
    with live_server.client() as owner:
        session = create_session(owner, 1)
        value = owner.cookies[COOKIE_NAME]
    user_id, signature = value.split(".", 1)
    forged_signature = ("A" if signature[0] != "A" else "B") + signature[1:]

    for forged in (f"{user_id}.{forged_signature}", user_id, "garbage", f"someone-else.{signature}"):
        with live_server.client(cookies={COOKIE_NAME: forged}) as attacker:
            response = attacker.get(f"/api/uploads/{session['session_id']}")
            assert response.status_code == 404, forged
            listed = attacker.get("/api/uploads")
            assert listed.json() == []
            [new_cookie] = _set_cookie_headers(listed)
            new_value = new_cookie.split(";")[0].split("=", 1)[1]
            assert new_value != forged
            assert not new_value.startswith(user_id + ".")


def test_identity_signer_round_trip() -> None:
    identity = Identity("k1")
    user_id, value = identity.new_user()
    assert identity.user_of(value) == user_id
    assert Identity("k2").user_of(value) is None
    assert identity.user_of(None) is None
    assert identity.user_of("") is None
    assert identity.user_of(value + "x") is None
