"""Counts and times every HTTP answer by route template (``/api/uploads/{session_id}``), never by raw path: ids in
paths would make a series per session. Paths no route matched are counted as ``unmatched``."""

from __future__ import annotations

import time

from starlette.types import Message, Receive, Scope, Send

from server.asgi import HttpMiddleware
from server.metrics import HTTP_LATENCY, HTTP_REQUESTS, WORKER_REQUESTS

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route that answered (set in the scope by the router once it matched)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class HttpMetrics(HttpMiddleware):
    """ASGI middleware: one count and one latency sample per HTTP request (500 when the app raised)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route, method = route_template(scope), scope["method"]
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)
            WORKER_REQUESTS.inc()
