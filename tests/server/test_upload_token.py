"""The upload token: a client that lost its identity cookie (a browser crash) can still resume its own upload."""

from __future__ import annotations

from tests.support.live_server import LiveServer
from tests.support.uploads import create_session


def test_the_token_opens_its_own_session_and_nothing_else(live_server: LiveServer) -> None:
    with live_server.client() as owner:
        mine = create_session(owner, 10, file_name="mine.bin")
        other = create_session(owner, 10, file_name="other.bin")
    token = mine["upload_token"]
    with live_server.client() as crashed:  # a new cookie jar: the identity cookie was lost
        assert crashed.get(f"/api/uploads/{mine['session_id']}").status_code == 404
        state = crashed.get(f"/api/uploads/{mine['session_id']}", headers={"X-Upload-Token": token})
        assert state.status_code == 200
        assert state.json()["file_name"] == "mine.bin"
        # The token is a capability for one session only, and cannot be forged.
        assert crashed.get(f"/api/uploads/{other['session_id']}", headers={"X-Upload-Token": token}).status_code == 404
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert crashed.get(f"/api/uploads/{mine['session_id']}", headers={"X-Upload-Token": forged}).status_code == 404
        gone = crashed.delete(f"/api/uploads/{mine['session_id']}", headers={"X-Upload-Token": token})
        assert gone.status_code == 204
