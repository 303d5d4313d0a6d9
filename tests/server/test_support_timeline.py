"""The support timeline: an admin of the session's tenant reads server events and client telemetry in time order
(API and status page); the owner without the role, another tenant's admin and anonymous callers cannot."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.host_issuer import HostIssuer
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.uploads import MiB, create_session, upload_all
from wire.telemetry import TELEMETRY_PATH

ADMIN_ROLE = "uploads-admin"



@pytest.fixture
def server(issuer: HostIssuer, make_live_server: MakeLiveServer) -> LiveServer:
    return make_live_server(**issuer.settings(), jwt_admin_role=ADMIN_ROLE)


def _bearer(issuer: HostIssuer, user: str, tenant: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(user, tenant, roles=list(roles))}"}


def test_only_admins_of_the_tenant_read_the_timeline_in_order(server: LiveServer, issuer: HostIssuer) -> None:
    with server.client(headers=_bearer(issuer, "alice", "acme")) as alice:
        size = 5 * MiB + 1
        session = create_session(alice, size, part_size=5 * MiB)
        sid = session["session_id"]
        assert alice.get(f"/api/uploads/{sid}").status_code == 200  # parts listed: a resuming client asks
        now = time.time()  # the browser's clock; the server files these events when they arrive
        batch = {
            "uploads": [
                {
                    "session_id": sid,
                    "events": [
                        {"at": now, "kind": "retry", "detail": "transient", "value": 0},
                        {"at": now, "kind": "resumed", "detail": "crash", "value": 0},
                    ],
                }
            ],
            "sent_at": now,
        }
        assert alice.post(TELEMETRY_PATH, json=batch).status_code == 202
        parts = upload_all(alice, session, os.urandom(size))
        assert alice.post(f"/api/uploads/{sid}/complete", json={"parts": parts}).status_code == 200
        # The owner has no support role: no timeline, and none on her page.
        assert alice.get(f"/api/admin/uploads/{sid}/timeline").status_code == 403
        own_page = alice.get(f"/files/{sid}")
        assert own_page.status_code == 200 and "Support timeline" not in own_page.text

    with server.client(headers=_bearer(issuer, "sam", "acme", ADMIN_ROLE)) as support:
        answer = support.get(f"/api/admin/uploads/{sid}/timeline")
        assert answer.status_code == 200, answer.text
        page = support.get(f"/files/{sid}")
    timeline = answer.json()
    assert timeline["status"] == "completed"
    steps = [(e["source"], e["kind"], e["detail"]) for e in timeline["events"]]
    assert steps == [
        ("server", "created", ""),
        ("server", "parts_listed", ""),
        ("client", "retry", "transient"),
        ("client", "resumed", "crash"),
        ("server", "completed", ""),
    ]
    stamps = [e["at"] for e in timeline["events"]]
    assert stamps == sorted(stamps)
    assert page.status_code == 200
    assert "Support timeline" in page.text and "resumed" in page.text and "crash" in page.text
    assert "Download" not in page.text, "support reads the timeline, not the user's file"
    assert "Download" in own_page.text

    # Nobody else reads it: a colleague without the role, another tenant's admin, an anonymous caller.
    path = f"/api/admin/uploads/{sid}/timeline"
    with server.client(headers=_bearer(issuer, "bob", "acme")) as colleague:
        assert colleague.get(path).status_code == 403
        assert colleague.get(f"/files/{sid}").status_code == 404
    with server.client(headers=_bearer(issuer, "eve", "globex", ADMIN_ROLE)) as other_admin:
        assert other_admin.get(path).status_code == 404
        assert other_admin.get(f"/files/{sid}").status_code == 404
    with server.client() as nobody:
        assert nobody.get(path).status_code == 401
    # A tenant whose name extends another's is another tenant.
    with server.client(headers=_bearer(issuer, "eve", "acm", ADMIN_ROLE)) as prefix_admin:
        assert prefix_admin.get(path).status_code == 404
