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
from collections.abc import AsyncIterator, Callable, Iterator
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
    stored: bool = False  # the store answered it 200 (a "portal" 200 from the proxy itself is not stored)


#: What to do to one part PUT: None (forward it), "corrupt" (flip a byte on the way: S3 answers BadDigest),
#: "portal" (answer 200 with a captive portal's HTML page, as a Wi-Fi login does), "no-etag" (answer 200 with an
#: empty body and no ETag, as a meddling proxy can), or an HTTP status to answer instead of S3 (500, 503 ...), with
#: an S3-style XML error body. The portal and no-etag answers never reach the store.
Fault = str | int | None
PORTAL_PAGE = (
    "<!DOCTYPE html><html><head><title>Welcome to Airport Wi-Fi</title></head>"
    "<body><form action='/login'>Accept the terms to continue</form></body></html>"
)
FaultRule = Callable[[PartPut], Fault]

S3_ERRORS = {500: "InternalError", 503: "SlowDown", 502: "BadGateway"}


@dataclass
class ProxyState:
    rate_bytes_per_s: float | None = None  # shared by all connections; None: full speed
    puts: list[PartPut] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fault: FaultRule | None = None
    injected: list[tuple[int, Fault]] = field(default_factory=list)  # (part number, fault) as applied

    def completed(self) -> list[PartPut]:
        """The PUTs the store itself accepted."""
        with self.lock:
            return [p for p in self.puts if p.stored]

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
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if part is None:
            body = await request.body()
            try:
                upstream_response = await client.request(
                    request.method, request.url.path, params=request.url.query, headers=headers, content=body
                )
            except httpx.HTTPError:  # the store is down (restarting): a preflight fails as it would via a CDN
                return Response("storage unreachable", 502, headers=_cors(request))
            return _relay(upstream_response)

        # The body is streamed on with its length: S3 may have Content-Length signed into the URL, and a chunked
        # body would then fail the signature (a flipped byte keeps the length).
        if "content-length" in request.headers:
            headers["content-length"] = request.headers["content-length"]
        started = time.time()
        record = PartPut(part, query.get("uploadId", [""])[0], 0, None, started, started)
        with state.lock:
            state.puts.append(record)
        fault = state.fault(record) if state.fault is not None else None
        if fault is not None:
            with state.lock:
                state.injected.append((part, fault))
        length = int(request.headers.get("content-length", "0"))
        flip_at = length // 2 if fault == "corrupt" else -1
        disconnected = False

        async def stream_body() -> AsyncIterator[bytes]:
            """Stream the body upstream as it arrives (S3 checks the signature on the headers, as it would)."""
            nonlocal disconnected
            try:
                async for chunk in request.stream():
                    assert bucket is not None
                    await bucket.take(len(chunk))
                    if record.received <= flip_at < record.received + len(chunk):
                        data = bytearray(chunk)
                        data[flip_at - record.received] ^= 0x01
                        chunk = bytes(data)
                    record.received += len(chunk)
                    yield chunk
            except ClientDisconnect:
                disconnected = True
                raise

        try:
            if fault in ("portal", "no-etag"):
                async for _ in stream_body():  # take the body, then answer 200 in the store's place
                    pass
                record.status = 200
                if fault == "portal":
                    return Response(PORTAL_PAGE, 200, media_type="text/html", headers=_cors(request))
                return Response(b"", 200, headers=_cors(request))
            if isinstance(fault, int):
                async for _ in stream_body():  # take the body, then answer in S3's place
                    pass
                record.status = fault
                code = S3_ERRORS.get(fault, "InjectedFault")
                xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message></Error>"
                return Response(xml, fault, media_type="application/xml", headers=_cors(request))
            upstream_response = await client.request(
                request.method, request.url.path, params=request.url.query, headers=headers, content=stream_body()
            )
            record.status = upstream_response.status_code
            record.stored = record.status == 200
            return _relay(upstream_response)
        except (ClientDisconnect, httpx.HTTPError) as error:
            if disconnected or isinstance(error, ClientDisconnect):
                return Response(status_code=499)
            record.status = 502  # the store is down (restarting): the browser sees a gateway error, as via a CDN
            return Response("storage unreachable", 502, headers=_cors(request))
        finally:
            record.ended = time.time()
            record.done = True

    def _relay(upstream_response: httpx.Response) -> Response:
        out_headers = {k: v for k, v in upstream_response.headers.items() if k.lower() not in HOP_BY_HOP}
        out_headers.pop("content-encoding", None)
        return Response(upstream_response.content, upstream_response.status_code, headers=out_headers)

    def _cors(request: Request) -> dict[str, str]:
        """Injected answers must still pass the browser's CORS check, or the page only sees a network error."""
        origin = request.headers.get("origin")
        return {"access-control-allow-origin": origin} if origin else {}

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
