"""Security headers on every answer, and the Origin check of state-changing API calls.

The Content-Security-Policy allows what the app and Pyodide need and nothing more: scripts and workers only from
this origin, plus ``'wasm-unsafe-eval'`` (compiling WebAssembly; not JavaScript ``eval``); ``connect-src`` adds the
S3 endpoint browsers PUT parts to; no plugins, no framing (``frame-ancestors 'none'``), no ``<base>`` tricks, forms
only to this origin. ``Referrer-Policy: no-referrer`` keeps tokens in page URLs (email links) from leaking to other
sites; HSTS is sent when the app is served over https.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Methods that change state: their API calls must come from one of our origins (or from a non-browser client).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def route_path(scope: Scope) -> str:
    """The path below the app's mount point: under a prefix (``root_path``: mounted by a host application, or
    ``--root-path`` behind a proxy) ASGI paths include the prefix, and ``/uploader/api/…`` is an API call too."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(connect_origins: Iterable[str]) -> str:
    connect = " ".join(dict.fromkeys(["'self'", *connect_origins]))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "worker-src 'self'",
            f"connect-src {connect}",
            "img-src 'self' data:",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """ASGI middleware: adds the headers to every HTTP answer (pages, API, static files)."""

    def __init__(self, app: ASGIApp, *, connect_origins: Iterable[str], https: bool) -> None:
        self.app = app
        headers = {
            "content-security-policy": content_security_policy(connect_origins),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
            "cross-origin-opener-policy": "same-origin",
            "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
        }
        if https:
            headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"
        self._headers = [(k.encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in self._headers if k not in present),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class OriginCheck:
    """ASGI middleware: a state-changing ``/api`` call whose ``Origin`` is not one of ours is refused (403).

    Browsers send ``Origin`` with every cross-origin request and with same-origin POST/PUT/DELETE; a request
    without one comes from a non-browser client (the terminal uploader), which cross-site request forgery cannot
    use. ``Sec-Fetch-Site: cross-site`` without an ``Origin`` is refused too.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(origin.rstrip("/") for origin in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS and route_path(scope).startswith("/api/"):
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            refused = (
                origin not in self.allowed if origin is not None else headers.get("sec-fetch-site") == "cross-site"
            )
            if refused:
                body = json.dumps({"detail": "cross-origin request refused"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
