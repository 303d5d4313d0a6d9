"""Which reverse proxies are believed: the one home of ``X-Forwarded-For``, ``-Proto`` and ``-Prefix``.

Behind a proxy the TCP peer is the proxy, so per-address rate limits would count every client as one, and a proxy
that serves the uploader under a path (``/uploader`` stripped before it reaches us) must tell us that path so the
pages, the worker, the runtime manifest and the API URLs carry it. Those headers are only a proxy's word: anybody can
send them. So they are honoured only from the addresses in ``FORWARDED_ALLOW_IPS`` (none by default), and the client
address and scheme are read by uvicorn's own ``ProxyHeadersMiddleware`` (the well-kept parser of the right-most
untrusted ``X-Forwarded-For`` hop). ``python -m server`` runs uvicorn with its proxy headers off, so this is the only
place they are read.
"""

from __future__ import annotations

import re

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PREFIX_HEADER = b"x-forwarded-prefix"
#: Path segments of unreserved characters, never ``.`` or ``..``: a prefix is written into URLs and pages as is.
_PREFIX = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)+")


def is_plain_prefix(prefix: str) -> bool:
    """A path the app may be served under: empty, or ``/``-led segments of unreserved characters (no ``.``/``..``)."""
    return not prefix or _PREFIX.fullmatch(prefix) is not None


def url_prefix(scope: Scope) -> str:
    """What every URL the app writes into a page or an answer starts with: the path it is served under (a host's
    mount, ``--root-path``, or a trusted proxy's ``X-Forwarded-Prefix``), without a trailing slash."""
    root: str = scope.get("root_path", "")
    return root.rstrip("/")


class PrefixError(ValueError):
    """A trusted proxy sent an ``X-Forwarded-Prefix`` that is not a plain absolute path."""


def forwarded_prefix(value: str) -> str:
    """The path prefix a proxy sent, without a trailing slash ("" for none); :class:`PrefixError` for anything
    else than plain path segments (it ends up in URLs and HTML)."""
    prefix = value.strip().rstrip("/")
    if not is_plain_prefix(prefix):
        raise PrefixError(f"X-Forwarded-Prefix must be an absolute path of plain segments, not {value[:100]!r}")
    return prefix


class TrustedProxies:
    """ASGI middleware: from a trusted peer, the client address and scheme from ``X-Forwarded-For``/``-Proto`` and the
    path prefix from ``X-Forwarded-Prefix`` (added in front of ``root_path`` and ``path``, as uvicorn's
    ``--root-path`` does); from anyone else, none of them."""

    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        self.forwarded = ProxyHeadersMiddleware(app, trusted)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        if peer is not None and peer[0] in self.forwarded.trusted_hosts:
            raw = next((v for k, v in scope["headers"] if k == PREFIX_HEADER), None)
            if raw is not None:
                try:
                    prefix = forwarded_prefix(raw.decode("latin-1"))
                except PrefixError as error:
                    await PlainTextResponse(str(error), status_code=400)(scope, receive, send)
                    return
                scope = {**scope, "root_path": prefix + scope.get("root_path", ""), "path": prefix + scope["path"]}
        await self.forwarded(scope, receive, send)  # type: ignore[arg-type]
