"""Pages, ``/static`` and ``/runtime``: MIME types the browser insists on, cache headers, and a missing build."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest

from server.identity import COOKIE_NAME
from server.settings import REPO_ROOT
from tests.support.live_server import LiveServer, MakeLiveServer, settings_for
from tests.support.seaweed import SeaweedService

INDEX = b"<!doctype html><title>Smartcat</title>"
WASM = b"\0asm\x01\0\0\0" + b"compressible " * 4096
RUNTIME_JSON = {
    "pyodide_url": "/runtime/pyodide/314.0.7/",
    "engine_wheel_url": "/runtime/engine/e-0.1-py3-none-any.whl",
}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def web_server(seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("static")
    web, runtime = root / "web", root / "runtime"
    _write(web / "index.html", INDEX)
    _write(web / "app.mjs", b"export const x = 1;\n")
    _write(web / "worker.js", b"self.onconnect = () => {};\n")
    _write(web / "style.css", b"body{}\n")
    _write(root / "private.txt", b"not for the web")
    pyodide = runtime / "pyodide" / "314.0.7"
    _write(pyodide / "pyodide.asm.wasm", b"\0asm\x01\0\0\0")
    _write(pyodide / "pyodide.mjs", b"export {};\n")
    _write(pyodide / "python_stdlib.zip", b"PK\x05\x06" + b"\0" * 18)
    _write(pyodide / "pyodide-lock.json", b"{}")
    _write(pyodide / "snapshot.bin.gz", gzip.compress(b"snapshot"))
    _write(runtime / "engine" / "e-0.1-py3-none-any.whl", b"PK\x05\x06" + b"\0" * 18)
    _write(runtime / "runtime.json", json.dumps(RUNTIME_JSON).encode())
    # What web/build_runtime.py leaves beside a file it precompressed (and a variant planted as a symlink).
    _write(pyodide / "big.wasm", WASM)
    _write(pyodide / "big.wasm.br", brotli.compress(WASM))
    _write(pyodide / "big.wasm.gz", gzip.compress(WASM))
    _write(pyodide / "only-gz.mjs", b"export {};\n" * 100)
    _write(pyodide / "only-gz.mjs.gz", gzip.compress(b"export {};\n" * 100))
    _write(pyodide / "planted.wasm", WASM)
    (pyodide / "planted.wasm.br").symlink_to(root / "private.txt")
    _write(web / "plain.js", b"x" * 1000)
    _write(web / "plain.js.gz", gzip.compress(b"x" * 1000))
    server = LiveServer(settings_for(seaweed, root, web_dir=web, runtime_dir=runtime)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("path", "media_type", "cache"),
    [
        ("/static/app.mjs", "text/javascript", "no-cache"),
        ("/static/worker.js", "text/javascript", "no-cache"),
        ("/static/style.css", "text/css", "no-cache"),
        ("/static/index.html", "text/html", "no-cache"),
        ("/runtime/pyodide/314.0.7/pyodide.asm.wasm", "application/wasm", "public, max-age=31536000, immutable"),
        ("/runtime/pyodide/314.0.7/pyodide.mjs", "text/javascript", "public, max-age=31536000, immutable"),
        ("/runtime/pyodide/314.0.7/python_stdlib.zip", "application/zip", "public, max-age=31536000, immutable"),
        ("/runtime/pyodide/314.0.7/pyodide-lock.json", "application/json", "public, max-age=31536000, immutable"),
        ("/runtime/engine/e-0.1-py3-none-any.whl", "application/zip", "public, max-age=31536000, immutable"),
    ],
)
def test_media_types_and_cache_headers(web_server: LiveServer, path: str, media_type: str, cache: str) -> None:
    response = httpx.get(web_server.base_url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["cache-control"] == cache
    assert "etag" in response.headers and "last-modified" in response.headers


def test_gzip_files_are_served_as_stored(web_server: LiveServer) -> None:
    response = httpx.get(web_server.base_url + "/runtime/pyodide/314.0.7/snapshot.bin.gz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in response.headers
    assert gzip.decompress(response.content) == b"snapshot"


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),  # what Chromium sends
        ("gzip", "gzip"),
        ("br;q=0, gzip;q=0.5", "gzip"),
        ("*", "br"),
        ("br;q=0, *", "gzip"),
        ("identity", None),
        ("br;q=0, gzip;q=0", None),
        ("br;q=oops, gzip;q=", None),  # a malformed weight refuses that coding, never a 500
        ("", None),
    ],
)
def test_precompressed_runtime_files_by_accept_encoding(
    web_server: LiveServer, accept_encoding: str, coding: str | None
) -> None:
    response = httpx.get(web_server.base_url + "/runtime/pyodide/314.0.7/big.wasm",
                         headers={"Accept-Encoding": accept_encoding})
    assert response.status_code == 200
    assert response.content == WASM  # httpx decodes br and gzip
    assert response.headers.get("content-encoding") == coding
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"] == "application/wasm"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    wire = {"br": len(brotli.compress(WASM)), "gzip": len(gzip.compress(WASM)), None: len(WASM)}[coding]
    assert int(response.headers["content-length"]) == response.num_bytes_downloaded == wire


def test_each_encoding_has_its_own_etag_and_revalidates(web_server: LiveServer) -> None:
    url = web_server.base_url + "/runtime/pyodide/314.0.7/big.wasm"
    etags = {coding: httpx.get(url, headers={"Accept-Encoding": coding}).headers["etag"] for coding in ("br", "gzip",
                                                                                                       "identity")}
    assert len(set(etags.values())) == 3  # a cache never answers a gzip request with the brotli bytes
    again = httpx.get(url, headers={"Accept-Encoding": "br", "If-None-Match": etags["br"]})
    assert again.status_code == 304


def test_only_existing_variants_are_offered(web_server: LiveServer) -> None:
    base = web_server.base_url + "/runtime/pyodide/314.0.7/"
    only_gz = httpx.get(base + "only-gz.mjs", headers={"Accept-Encoding": "br, gzip"})
    assert only_gz.headers["content-encoding"] == "gzip"
    assert only_gz.content == b"export {};\n" * 100
    plain = httpx.get(base + "pyodide.mjs", headers={"Accept-Encoding": "br, gzip"})
    assert "content-encoding" not in plain.headers and "vary" not in plain.headers
    # A variant asked for by name is a file like any other, not an encoding of something.
    direct = httpx.get(base + "big.wasm.br", headers={"Accept-Encoding": "br"})
    assert "content-encoding" not in direct.headers
    assert brotli.decompress(direct.content) == WASM


def test_a_planted_symlink_variant_is_never_served(web_server: LiveServer) -> None:
    url = web_server.base_url + "/runtime/pyodide/314.0.7/planted.wasm"
    response = httpx.get(url, headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    assert response.content == WASM
    assert "content-encoding" not in response.headers
    assert b"not for the web" not in response.content


def test_static_files_are_never_negotiated(web_server: LiveServer) -> None:
    """``/static`` is the source tree: a stray ``.gz`` beside a file there is not an encoding of it."""
    response = httpx.get(web_server.base_url + "/static/plain.js", headers={"Accept-Encoding": "gzip"})
    assert response.content == b"x" * 1000
    assert "content-encoding" not in response.headers


@pytest.mark.parametrize("path", ["/", "/projects"])
def test_pages_serve_index_and_issue_identity(web_server: LiveServer, path: str) -> None:
    with web_server.client() as http:
        response = http.get(path)
        assert response.status_code == 200
        assert response.content == INDEX
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-cache"
        assert COOKIE_NAME in http.cookies
        # The cookie from the page is the API's identity: no second cookie on the first API call.
        api = http.get("/api/uploads")
        assert not [c for c in api.headers.get_list("set-cookie") if c.startswith(f"{COOKIE_NAME}=")]


def test_revalidation_answers_304(web_server: LiveServer) -> None:
    first = httpx.get(web_server.base_url + "/static/app.mjs")
    again = httpx.get(web_server.base_url + "/static/app.mjs", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "no-cache"
    page = httpx.get(web_server.base_url + "/")
    page_again = httpx.get(web_server.base_url + "/", headers={"If-None-Match": page.headers["etag"]})
    assert page_again.status_code == 304


@pytest.mark.parametrize("path", ["/static/../private.txt", "/static/%2e%2e/private.txt", "/static/nope.js"])
def test_nothing_outside_the_web_dir(web_server: LiveServer, path: str) -> None:
    response = httpx.get(web_server.base_url + path)
    assert response.status_code == 404
    assert b"not for the web" not in response.content


def test_runtime_manifest(web_server: LiveServer) -> None:
    response = httpx.get(web_server.base_url + "/api/runtime")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache"
    served = response.json()
    engine = served.pop("engine")
    assert served == RUNTIME_JSON
    settings = web_server.settings
    chosen = {"leave_threshold": settings.leave_threshold_seconds, "parallel_uploads": settings.parallel_uploads,
              "part_size": settings.part_size_bytes, "adaptive_concurrency": settings.adaptive_concurrency,
              "adaptive_part_size": settings.adaptive_part_size,
              # Part URLs on the store's own origin: the Background Fetch hand-off stays off.
              "background_fetch": False}
    assert settings.part_url_base is None
    assert engine == chosen


def test_without_a_build_the_api_still_works(client: httpx.Client, live_server: LiveServer) -> None:
    assert not live_server.settings.web_dir.exists() and not live_server.settings.runtime_dir.exists()
    runtime = client.get("/api/runtime")
    assert runtime.status_code == 503
    assert "run `make assets`" in runtime.json()["detail"]
    page = client.get("/")
    assert page.status_code == 404
    assert "index.html" in page.json()["detail"]
    assert client.get("/static/app.mjs").status_code == 404
    assert client.get("/runtime/pyodide/pyodide.asm.wasm").status_code == 404
    assert client.get("/api/uploads").status_code == 200


def test_openapi_lists_the_upload_api_when_enabled(make_live_server: MakeLiveServer) -> None:
    with make_live_server(api_docs=True).client() as client:
        schema: dict[str, Any] = client.get("/openapi.json").json()
        assert {"/api/uploads", "/api/uploads/{session_id}", "/api/uploads/{session_id}/urls"} <= set(schema["paths"])
        assert client.get("/docs").status_code == 200


def test_api_docs_are_off_by_default(client: httpx.Client) -> None:
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/docs").status_code == 404


def test_the_app_page_links_relatively_so_it_works_under_a_path_prefix() -> None:
    """The standalone page is the same file at ``/`` and under a proxy's prefix or a host's mount: a link starting
    with ``/`` would leave the prefix (its script, its styles, its two pages)."""
    page = (REPO_ROOT / "web" / "index.html").read_text()
    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert len(links) >= 6, links
    assert [link for link in links if link.startswith("/")] == []
