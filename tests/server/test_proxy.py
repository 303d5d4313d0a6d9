"""Proxy trust (server/proxy.py): ``X-Forwarded-For``/``-Proto``/``-Prefix`` are a proxy's word, believed only from
``FORWARDED_ALLOW_IPS``. A client that sends them itself keeps its own address for the rate limits and its own
prefix for the URLs in pages and the runtime manifest; a trusted proxy's are used; behind the real nginx of
server/nginx.py the rate limit counts each client address, whatever the client claims."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from server.app import create_app
from server.identity import COOKIE_NAME
from server.nginx import Nginx, NginxConfig
from server.proxy import PrefixError, forwarded_prefix
from tests.conftest import database_overrides
from tests.support.live_server import LiveServer, isolated_settings, settings_for
from tests.support.ports import free_port
from tests.support.seaweed import SeaweedService

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PROXY, STRANGER = "10.0.0.1", "203.0.113.9"
PYODIDE = "/runtime/pyodide/314.0.7/"


def _runtime_dir(parent: Path) -> Path:
    runtime = parent / "runtime"
    runtime.mkdir()
    (runtime / "runtime.json").write_text(json.dumps({"pyodide_url": PYODIDE}))
    return runtime


@pytest.fixture(scope="module")
def clients(
    seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, TestClient]]:
    """One app trusting ``PROXY``; a client connecting from the proxy and one from a stranger (each test uses its own
    forwarded addresses, so the counters of one never meet another's)."""
    tmp_path = tmp_path_factory.mktemp("proxy")
    settings = settings_for(
        seaweed, tmp_path, web_dir=WEB_DIR, runtime_dir=_runtime_dir(tmp_path), forwarded_allow_ips=[PROXY],
        rate_limit_new_identity="2/minute", **database_overrides(request, tmp_path),
    )
    app = create_app(settings)
    with TestClient(app, base_url=settings.public_origin, client=(PROXY, 40000)) as proxy:  # runs the lifespan
        yield proxy, TestClient(app, base_url=settings.public_origin, client=(STRANGER, 40001))


def _new_identities(client: TestClient | httpx.Client, forwarded_for: list[str]) -> list[bool]:
    """Open the app once per ``X-Forwarded-For`` value with no cookie: whether each visit was given an identity (the
    rate limit on new identities counts per client address)."""
    given = []
    for value in forwarded_for:
        client.cookies.clear()
        given.append(COOKIE_NAME in client.get("/", headers={"X-Forwarded-For": value}).cookies)
    return given


def test_a_client_cannot_claim_another_address(clients: tuple[TestClient, TestClient]) -> None:
    _, stranger = clients
    # A new address each time would be a new budget each time: all three count against the stranger's own address.
    assert _new_identities(stranger, ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == [True, True, False]


def test_a_trusted_proxy_names_the_client(clients: tuple[TestClient, TestClient]) -> None:
    proxy, _ = clients
    assert _new_identities(proxy, ["192.0.2.10", "192.0.2.10", "192.0.2.10"]) == [True, True, False]
    # Another client behind the same proxy has its own budget; what a client wrote in front of the proxy's own hop
    # is not believed (the right-most address the proxy appended is the client).
    assert _new_identities(proxy, ["192.0.2.10, 192.0.2.11"]) == [True]
    assert _new_identities(proxy, ["192.0.2.11, 192.0.2.10"]) == [False]


def _page_links(client: TestClient, headers: dict[str, str]) -> str:
    page = client.get("/files/nothing-here", headers=headers)
    assert page.status_code == 404
    return page.text


def test_a_client_cannot_move_the_urls_under_another_prefix(clients: tuple[TestClient, TestClient]) -> None:
    _, stranger = clients
    evil = {"X-Forwarded-Prefix": "/evil"}
    assert stranger.get("/api/runtime", headers=evil).json()["pyodide_url"] == PYODIDE
    page = _page_links(stranger, evil)
    assert 'href="/static/style.css"' in page and 'href="/"' in page and "/evil" not in page


def test_a_trusted_proxy_serves_the_app_under_its_prefix(clients: tuple[TestClient, TestClient]) -> None:
    proxy, _ = clients
    prefixed = {"X-Forwarded-Prefix": "/uploader/"}
    assert proxy.get("/api/runtime", headers=prefixed).json()["pyodide_url"] == "/uploader" + PYODIDE
    page = _page_links(proxy, prefixed)
    assert 'href="/uploader/static/style.css"' in page and 'href="/uploader/"' in page
    # The prefix guards hold under it: a state-changing call from another origin is refused.
    refused = proxy.post("/api/uploads", json={"file_name": "a.pdf", "size": 1},
                         headers={**prefixed, "Origin": "https://evil.example"})
    assert refused.status_code == 403


@pytest.mark.parametrize("value", ["uploader", "/a/../b", "/a/./b", "//evil.example", '/x"><script>', "/a b"])
def test_a_prefix_that_is_not_a_plain_path_is_refused(clients: tuple[TestClient, TestClient], value: str) -> None:
    with pytest.raises(PrefixError, match="X-Forwarded-Prefix"):
        forwarded_prefix(value)
    proxy, _ = clients
    answer = proxy.get("/api/runtime", headers={"X-Forwarded-Prefix": value})
    assert answer.status_code == 400 and "X-Forwarded-Prefix" in answer.text


def test_forwarded_allow_ips_must_be_addresses_or_networks() -> None:
    assert isolated_settings(forwarded_allow_ips="127.0.0.1, 10.0.0.0/8,*").forwarded_allow_ips == [
        "127.0.0.1", "10.0.0.0/8", "*"
    ]
    with pytest.raises(ValidationError, match=r"FORWARDED_ALLOW_IPS: 'proxy\.example' is not an IP address"):
        isolated_settings(forwarded_allow_ips="proxy.example")


@pytest.fixture(scope="module")
def nginx(
    seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Nginx]:
    """The app behind the real nginx of server/nginx.py on this host, trusting it (and only it)."""
    tmp_path = tmp_path_factory.mktemp("behind-nginx")
    settings = settings_for(
        seaweed, tmp_path, web_dir=WEB_DIR, runtime_dir=_runtime_dir(tmp_path), forwarded_allow_ips=["127.0.0.1"],
        rate_limit_new_identity="2/minute", **database_overrides(request, tmp_path),
    )
    server = LiveServer(settings).start()
    config = NginxConfig(work_dir=tmp_path / "nginx", app_upstreams=[server.base_url],
                         store_endpoint_url=seaweed.endpoint_url, bucket=settings.s3_bucket,
                         listen_port=free_port(), new_session=False)
    config.work_dir.mkdir()
    try:
        with Nginx(config) as proxy:
            yield proxy
    finally:
        server.stop()


def test_behind_nginx_the_rate_limit_counts_each_client_address(nginx: Nginx) -> None:
    """Clients on this host's loopback (127.0.0.2, 127.0.0.3 and the trusted 127.0.0.1): each connects to nginx from its
    own address."""

    def client_from(address: str) -> httpx.Client:
        return httpx.Client(base_url=nginx.origin, transport=httpx.HTTPTransport(local_address=address), timeout=30)

    with client_from("127.0.0.2") as first, client_from("127.0.0.3") as second, client_from("127.0.0.1") as local:
        spoofed = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        assert _new_identities(first, spoofed) == [True, True, False]  # its own address, whatever it wrote
        assert _new_identities(second, ["198.51.100.1"]) == [True]  # another address, its own budget
        # A client on the very address the app trusts (make run: nginx and the app share this host's loopback) is
        # named by nginx too: what it wrote is replaced, not extended, so it cannot pass for another address.
        assert _new_identities(local, spoofed) == [True, True, False]
        # nginx drops a client's X-Forwarded-Prefix: the app is at / behind it.
        manifest = first.get("/api/runtime", headers={"X-Forwarded-Prefix": "/evil"}).json()
        assert manifest["pyodide_url"] == PYODIDE
