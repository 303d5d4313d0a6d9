"""The web app's files: pages, ``/static`` (our own JS/CSS) and ``/runtime`` (Pyodide and the engine wheel).

MIME types are set from a fixed table rather than the platform's ``mimetypes``: a ``.wasm`` served with any other
type than ``application/wasm`` makes Pyodide hang without an error, and ``.gz`` files must go out as-is (the page
decompresses them), never as ``Content-Encoding: gzip``. Under ``/runtime`` a file the build precompressed
(``x.wasm.br``, ``x.wasm.gz`` beside ``x.wasm``) goes out as that variant with ``Content-Encoding`` when the request
accepts it, and ``Vary: Accept-Encoding`` so caches keep the variants apart.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from server.dependencies import SettingsDep
from server.identity import COOKIE_NAME, Identity, get_identity
from server.proxy import url_prefix
from server.ratelimit import RateLimited, RateLimitsDep, client_address

#: Content types by file suffix (the last one wins: ``x.json.gz`` is gzip, served as stored).
MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".zst": "application/zstd",
    ".tar": "application/x-tar",
    ".py": "text/x-python; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
DEFAULT_MEDIA_TYPE = "application/octet-stream"

#: ``/runtime`` paths carry a version or content hash: cache them for a year and never revalidate.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Pages and ``/static`` change with every deploy under the same name: revalidate (cheap 304s via ETag).
REVALIDATE = "no-cache"


#: Precompressed siblings written by ``web/build_runtime.py``, best first: (content coding, file suffix).
ENCODED_VARIANTS: tuple[tuple[str, str], ...] = (("br", ".br"), ("gzip", ".gz"))


def media_type_for(path: str | os.PathLike[str]) -> str:
    return MEDIA_TYPES.get(Path(path).suffix.lower(), DEFAULT_MEDIA_TYPE)


def accepts(accept_encoding: str, coding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows ``coding`` (RFC 9110 12.5.3: listed or ``*`` with q > 0,
    and not refused by name with q=0; a malformed q counts as 0)."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if name.strip():
            weights[name.strip().lower()] = weight
    return weights.get(coding, weights.get("*", 0.0)) > 0


def _regular_file(path: str) -> os.stat_result | None:
    """A plain file (not a symlink that could point outside the served directory), else None."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return found if stat.S_ISREG(found.st_mode) else None


class WebFiles(StaticFiles):
    """StaticFiles with our MIME table and one Cache-Control policy, tolerant of a missing directory; with
    ``precompressed``, the build's ``.br``/``.gz`` siblings are served with ``Content-Encoding`` when accepted."""

    def __init__(self, directory: Path, cache_control: str, precompressed: bool = False) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.cache_control = cache_control
        self.precompressed = precompressed

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        headers = {"Cache-Control": self.cache_control}
        media_type = media_type_for(full_path)
        if self.precompressed and not str(full_path).endswith(tuple(s for _, s in ENCODED_VARIANTS)):
            variants = [(c, f"{full_path}{s}", _regular_file(f"{full_path}{s}")) for c, s in ENCODED_VARIANTS]
            if any(found for _, _, found in variants):
                headers["Vary"] = "Accept-Encoding"
            accept_encoding = Headers(scope=scope).get("accept-encoding", "")
            for coding, path, found in variants:
                if found is not None and accepts(accept_encoding, coding):
                    full_path, stat_result = path, found
                    headers["Content-Encoding"] = coding
                    break
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type,
            headers=headers,
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    async def check_config(self) -> None:
        """A missing directory answers 404s instead of failing: the API works without a built web app."""


router = APIRouter(tags=["web"])


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/projects", methods=["GET", "HEAD"], include_in_schema=False)
async def index(
    request: Request,
    settings: SettingsDep,
    identity: Annotated[Identity, Depends(get_identity)],
    rate_limits: RateLimitsDep,
) -> Response:
    """The single-page app; also where a new visitor gets the identity cookie, before any API call."""
    files = WebFiles(settings.web_dir, REVALIDATE)
    try:
        response = await files.get_response("index.html", request.scope)
    except StarletteHTTPException as error:
        if error.status_code == status.HTTP_404_NOT_FOUND:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"web app not found: no index.html in {settings.web_dir}"
            ) from error
        raise
    if settings.identity_mode == "anonymous" and identity.user_of(request.cookies.get(COOKIE_NAME)) is None:
        try:
            rate_limits.hit("new identities", rate_limits.new_identity, f"addr:{client_address(request)}")
        except RateLimited:
            return response  # the page still loads; its first API call answers 429 with Retry-After
        _, cookie_value = identity.new_user()
        identity.set_cookie(response, cookie_value)
    return response


@router.get("/api/runtime", tags=["runtime"])
async def runtime_manifest(request: Request, settings: SettingsDep) -> Response:
    """The runtime manifest written by the build (Pyodide files, engine wheel, snapshot), always revalidated,
    plus the engine settings this deployment chose (``engine``)."""
    path = settings.runtime_dir / "runtime.json"
    if not path.is_file():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"runtime assets are missing ({path} does not exist): run `make assets`",
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    # Under a prefix (a host mounted the uploader at /uploader, or a proxy forwards it there) the build's absolute
    # /runtime/… URLs are the prefix's.
    prefix = url_prefix(request.scope)
    for entry, key in ((manifest, "pyodide_url"), (manifest, "engine_wheel_url"), (manifest.get("snapshot"), "url")):
        if isinstance(entry, dict) and str(entry.get(key, "")).startswith("/"):
            entry[key] = prefix + entry[key]
    manifest["engine"] = {
        "leave_threshold": settings.leave_threshold_seconds,
        "parallel_uploads": settings.parallel_uploads,
        "part_size": settings.part_size_bytes,
        "adaptive_concurrency": settings.adaptive_concurrency,
        "adaptive_part_size": settings.adaptive_part_size,
        # Background Fetch sends only same-origin requests: the rest of an upload may go to it only then.
        "background_fetch": settings.background_hand_off,
    }
    return JSONResponse(manifest, headers={"Cache-Control": REVALIDATE})


def mount_web(app: FastAPI, web_dir: Path, runtime_dir: Path) -> None:
    """Serve ``/static`` from the web sources and ``/runtime`` from the build output."""
    app.mount("/static", WebFiles(web_dir, REVALIDATE), name="static")
    app.mount("/runtime", WebFiles(runtime_dir, IMMUTABLE, precompressed=True), name="runtime")
