"""The uploader mounted under a path of a host FastAPI application, with the host's own identity function.

Everything the browser fetches derives from the mount path (the runtime manifest's URLs included), the security
guards hold under the prefix (the Origin check of state-changing calls looked at the raw path before), the
uploader's start-up runs inside the host's lifespan, and the host's user is the owner: another user sees nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from pydantic import ValidationError

from server.app import create_app
from server.db import Database
from server.embed import mount_uploader
from server.identity import Principal
from server.notify.policy import CompletedFile, push_payload
from server.notify.service import NotificationService
from server.settings import Settings
from tests.conftest import database_overrides
from tests.support.live_server import isolated_settings, settings_for
from tests.support.seaweed import SeaweedService

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
RUNTIME = {
    "pyodide_url": "/runtime/pyodide/314.0.7/",
    "engine_wheel_url": "/runtime/engine/e-0.1-py3-none-any.whl",
    "snapshot": {"url": "/runtime/snapshot/k.bin.gz", "key": "k"},
}


def _signed_in(request: Request) -> Principal | None:
    """The host's own idea of who is signed in (here a header its test client sets; a real host reads its session)."""
    user = request.headers.get("x-host-user")
    return Principal(user=user, tenant="acme") if user else None


@pytest.fixture(scope="module")
def host(
    seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """One host for the module (each test uses its own users)."""
    tmp_path = tmp_path_factory.mktemp("host")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "runtime.json").write_text(json.dumps(RUNTIME))
    settings = settings_for(
        seaweed, tmp_path, web_dir=WEB_DIR, runtime_dir=runtime, **database_overrides(request, tmp_path)
    )
    app = FastAPI()

    @app.get("/", response_class=PlainTextResponse)
    def home() -> str:
        return "the host's own page"

    mount_uploader(app, "/uploader", settings, identify=_signed_in)
    with TestClient(app, base_url=settings.public_origin) as client:  # runs the lifespans (database, bucket)
        yield client


def test_urls_derive_from_the_mount_path(host: TestClient) -> None:
    manifest = host.get("/uploader/api/runtime").json()
    assert manifest["pyodide_url"] == "/uploader/runtime/pyodide/314.0.7/"
    assert manifest["engine_wheel_url"] == "/uploader/runtime/engine/e-0.1-py3-none-any.whl"
    assert manifest["snapshot"]["url"] == "/uploader/runtime/snapshot/k.bin.gz"
    worker = host.get("/uploader/static/worker.mjs")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
    assert "'wasm-unsafe-eval'" in worker.headers["content-security-policy"]  # the worker gets the uploader's CSP
    # The host's own pages keep their own headers: the uploader's policy is not imposed on them.
    page = host.get("/")
    assert page.text == "the host's own page" and "content-security-policy" not in page.headers


def test_the_host_user_owns_the_uploads(host: TestClient) -> None:
    alice, bob = {"x-host-user": "alice"}, {"x-host-user": "bob"}
    created = host.post("/uploader/api/uploads", json={"file_name": "a.pdf", "size": 1}, headers=alice)
    assert created.status_code == 201, created.text
    assert [s["session_id"] for s in host.get("/uploader/api/uploads", headers=alice).json()] == [
        created.json()["session_id"]
    ]
    assert host.get("/uploader/api/uploads", headers=bob).json() == []
    assert host.get(f"/uploader/api/uploads/{created.json()['session_id']}", headers=bob).status_code == 404
    # The server-rendered pages link under the mount: the stylesheet, the way back, each file's page.
    listing = host.get("/uploader/files", headers=alice).text
    assert f'href="/uploader/files/{created.json()["session_id"]}"' in listing
    assert 'href="/uploader/static/style.css"' in listing and 'href="/uploader/"' in listing
    # Nobody signed in to the host: told to sign in, and no anonymous identity is made up.
    nobody = host.post("/uploader/api/uploads", json={"file_name": "a.pdf", "size": 1})
    assert nobody.status_code == 401 and "sign in again" in nobody.json()["detail"]
    assert "uid" not in nobody.cookies


def test_each_host_user_has_an_opaque_browser_storage_key(host: TestClient) -> None:
    """The engine keeps each user's uploads in a folder of its own, named by this key (browser_py/engine/owner.py):
    stable for a user, another for anyone else, revealing no user id; nobody signed in is told to sign in."""
    users = ("alice", "alice", "bob")
    alice, again, bob = (host.get("/uploader/api/storage", headers={"x-host-user": u}) for u in users)
    assert alice.status_code == 200 and alice.headers["cache-control"] == "no-store"
    key = alice.json()["key"]
    assert re.fullmatch("[0-9a-f]{32}", key) and again.json()["key"] == key and bob.json()["key"] != key
    assert "alice" not in key and "acme" not in key
    assert host.get("/uploader/api/storage").status_code == 401


def test_state_changing_calls_from_another_origin_are_refused_under_the_prefix(host: TestClient) -> None:
    evil = {"x-host-user": "carol", "Origin": "https://evil.example"}
    refused = host.post("/uploader/api/uploads", json={"file_name": "a.pdf", "size": 1}, headers=evil)
    assert refused.status_code == 403, refused.text
    assert host.get("/uploader/api/uploads", headers={"x-host-user": "carol"}).json() == []


def test_links_made_outside_a_request_point_under_the_mount(tmp_path: Path) -> None:
    """Emails, pushes and the confirmation link are made by the notifier, with no request to learn the mount from:
    ``mount_uploader`` sets ``PUBLIC_PATH``, so they open the uploader's pages, not the host's ``/files``."""
    settings = isolated_settings(data_dir=tmp_path, public_origin="http://127.0.0.1:8443")
    uploader = mount_uploader(FastAPI(), "/uploader", settings)
    chosen: Settings = uploader.state.settings
    assert chosen.public_base == "http://127.0.0.1:8443/uploader"
    service = NotificationService(chosen, Database(f"sqlite:///{tmp_path / 'unused.db'}"))
    assert service.links.absolute("s1").startswith("http://127.0.0.1:8443/uploader/files/s1?token=")
    assert service.confirmations.link("owner", "a@example.com").startswith("http://127.0.0.1:8443/uploader/")
    assert push_payload([CompletedFile("s1", "a.pdf", 1)], chosen.public_path)["url"] == "/uploader/files/s1"
    # A PUBLIC_PATH that says otherwise is a mistake in the host's configuration: said at once, not in a link later.
    with pytest.raises(ValueError, match="is not the mount path"):
        mount_uploader(FastAPI(), "/uploader", isolated_settings(data_dir=tmp_path, public_path="/elsewhere"))


@pytest.mark.parametrize("value", ["uploader", "/up/../x", "/a b", "/a//b"])
def test_public_path_must_be_plain_segments(value: str) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_PATH"):
        isolated_settings(public_path=value)


@pytest.mark.parametrize("path", ["uploader", "/uploader/", ""])
def test_a_mount_path_must_be_absolute_without_a_trailing_slash(path: str) -> None:
    with pytest.raises(ValueError, match="mount path"):
        mount_uploader(FastAPI(), path)


def test_behind_a_proxy_that_strips_the_prefix_urls_derive_from_root_path(
    seaweed: SeaweedService, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``uvicorn --root-path /uploader`` behind a proxy: the same derivation as when mounted."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "runtime.json").write_text(json.dumps(RUNTIME))
    settings = settings_for(
        seaweed, tmp_path, web_dir=WEB_DIR, runtime_dir=runtime, **database_overrides(request, tmp_path)
    )
    with TestClient(create_app(settings), base_url=settings.public_origin, root_path="/uploader") as client:
        assert client.get("/api/runtime").json()["pyodide_url"] == "/uploader/runtime/pyodide/314.0.7/"
        body = {"file_name": "a.pdf", "size": 1}
        assert client.post("/api/uploads", json=body, headers={"Origin": "https://evil.example"}).status_code == 403
        assert client.post("/api/uploads", json=body).status_code == 201
        assert client.get("/api/storage").json() == {"key": ""}  # anonymous: the profile's one shared storage
        missing = client.get("/files/nothing-here")  # an error page links under the root path too
        assert missing.status_code == 404 and 'href="/uploader/static/style.css"' in missing.text
