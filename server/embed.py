"""The uploader inside a host FastAPI application: mounted under a path, started and stopped with the host.

The uploader is a whole ASGI application, not a bag of routes: its security headers (the CSP that lets Pyodide run),
the cross-origin check of state-changing API calls, the body limit and its background work (janitor, outbox,
notifier, scanner) belong to it. So a host mounts it (:func:`mount_uploader`) rather than including routers, and
keeps its own middleware and pages to itself. Everything the browser fetches derives from the mount path: the page
loads ``<path>/static/element.mjs``, the SharedWorker is ``<path>/static/worker.mjs`` (same origin as the host's
pages, so one engine per origin), and the worker finds the runtime and the API under ``<path>`` too.

Behind a reverse proxy that strips a prefix, run the uploader on its own with ``uvicorn --root-path /prefix``
instead: the same derivation holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from server.app import create_app
from server.identity import HostIdentify
from server.seaweed import SeaweedConfig, SeaweedFS
from server.settings import Settings


def mount_uploader(
    host: FastAPI, path: str = "/uploader", settings: Settings | None = None, *, identify: HostIdentify | None = None
) -> FastAPI:
    """Mount the uploader at ``path`` of ``host`` and run its start-up and shutdown inside the host's lifespan
    (Starlette does not run a mounted application's lifespan), with the embedded SeaweedFS when ``EMBEDDED_S3``.
    Returns the uploader application.

    ``identify``: the host's own "who is signed in" (a :class:`~server.identity.Principal`, or None for nobody);
    without it the uploader uses ``IDENTITY_MODE`` (e.g. the host's JWT in a cookie)."""
    if not path.startswith("/") or path.endswith("/"):
        raise ValueError(f"mount path must start with '/' and not end with it: {path!r}")
    chosen = settings or Settings()
    if chosen.public_path not in ("", path):
        raise ValueError(f"PUBLIC_PATH {chosen.public_path!r} is not the mount path {path!r}")
    # Emails and pushes are made outside any request: they learn the mount from PUBLIC_PATH, set here.
    uploader = create_app(chosen.model_copy(update={"public_path": path}), identify=identify)
    host.mount(path, uploader, name="uploader")
    host_lifespan = host.router.lifespan_context

    chosen = uploader.state.settings
    # EMBEDDED_S3 (the default, as for `python -m server`): the development SeaweedFS starts and stops with the host.
    seaweed = SeaweedFS(SeaweedConfig.from_settings(chosen)) if chosen.embedded_s3 else None

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        if seaweed is not None:
            await run_in_threadpool(seaweed.start)
        try:
            async with uploader.router.lifespan_context(uploader), host_lifespan(app) as state:
                yield state
        finally:
            if seaweed is not None:
                await run_in_threadpool(seaweed.stop)

    host.router.lifespan_context = lifespan
    return uploader

