"""A recording, throttling reverse proxy in front of S3, for tests.

Presigned URLs are signed for the proxy's host (the server's ``S3_PUBLIC_ENDPOINT_URL``), and the proxy forwards the
``Host`` header unchanged, so SigV4 still verifies at the store. It keeps a log of every part PUT (part number,
bytes received, outcome), which is how tests measure the bytes re-sent after a resume, and it can slow uploads to a
shared rate so a test can act "mid-upload" without racing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .ports import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


@dataclass(slots=True)
class PartPut:
    part_number: int
    upload_id: str
    received: int  # body bytes that reached the proxy
    status: int | None  # None: the client went away before the body was complete
    started: float
    ended: float
    done: bool = False  # the proxy has finished with this request (forwarded and answered, or abandoned)


@dataclass
class ProxyState:
    rate_bytes_per_s: float | None = None  # shared by all connections; None: full speed
    puts: list[PartPut] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def completed(self) -> list[PartPut]:
        with self.lock:
            return [p for p in self.puts if p.status == 200]

    def snapshot(self) -> list[PartPut]:
        """Copies of the records as they are now (the live ones keep changing while requests run)."""
        with self.lock:
            return [replace(p) for p in self.puts]

    def settled(self) -> bool:
        """No part PUT is still being received or forwarded."""
        with self.lock:
            return all(p.done for p in self.puts)


class _Bucket:
    """A token bucket shared by every request, so N parallel PUTs together get the configured rate."""

    def __init__(self, state: ProxyState) -> None:
        self._state = state
        self._next = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, nbytes: int) -> None:
        rate = self._state.rate_bytes_per_s
        if not rate:
            return
        async with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + nbytes / rate
            delay = self._next - now
        if delay > 0:
            await asyncio.sleep(delay)


def build_app(upstream: str, state: ProxyState) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=120.0)
    bucket: _Bucket | None = None

    async def forward(request: Request) -> Response:
        nonlocal bucket
        if bucket is None:
            bucket = _Bucket(state)
        query = parse_qs(request.url.query)
        part = int(query["partNumber"][0]) if request.method == "PUT" and "partNumber" in query else None
        started = time.time()
        body = bytearray()
        record = None
        if part is not None:
            record = PartPut(part, query.get("uploadId", [""])[0], 0, None, started, started)
            with state.lock:
                state.puts.append(record)
        try:
            async for chunk in request.stream():
                await bucket.take(len(chunk))
                body.extend(chunk)
                if record is not None:
                    record.received = len(body)
        except ClientDisconnect:
            if record is not None:
                record.ended = time.time()
                record.done = True
            return Response(status_code=499)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream_response = await client.request(
            request.method, request.url.path, params=request.url.query, headers=headers, content=bytes(body)
        )
        if record is not None:
            record.status = upstream_response.status_code
            record.ended = time.time()
            record.done = True
        out_headers = {k: v for k, v in upstream_response.headers.items() if k.lower() not in HOP_BY_HOP}
        out_headers.pop("content-encoding", None)
        return Response(upstream_response.content, upstream_response.status_code, headers=out_headers)

    methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


@dataclass
class RunningProxy:
    url: str
    state: ProxyState


@contextmanager
def s3_proxy(upstream: str, rate_bytes_per_s: float | None = None) -> Iterator[RunningProxy]:
    """Run the proxy on a free loopback port in a background thread for the duration of the block."""
    state = ProxyState(rate_bytes_per_s=rate_bytes_per_s)
    port = free_port()
    config = uvicorn.Config(build_app(upstream, state), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="s3-proxy", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the S3 proxy did not start")
        time.sleep(0.02)
    try:
        yield RunningProxy(f"http://127.0.0.1:{port}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
