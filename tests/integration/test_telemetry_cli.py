"""Client telemetry from the terminal uploader (the same accumulator and reporter as the browser's worker) through
the real server: a resumed upload's cause, retries and outcome reach /metrics; a batch that does not arrive is kept,
one the server refuses is dropped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_py.adapters.cpython import HttpxJson, upload_file
from browser_py.engine.backoff import Backoff
from browser_py.engine.events import PartFailed, SessionCreated
from browser_py.engine.failures import Failure, FailureKind
from browser_py.engine.telemetry import Telemetry
from browser_py.engine.upload import EngineConfig
from browser_py.reporting import Reporter
from tests.integration.test_cpython_upload import CountingTransport
from tests.support.live_server import LiveServer
from tests.support.ports import free_port
from tests.support.scrape import moved, scrape
from wire.plan import MiB

PART = 8 * MiB


async def test_a_resumed_upload_reports_restart_retries_and_completion(live_server: LiveServer, tmp_path: Path) -> None:
    server = live_server
    source = tmp_path / "three-parts.bin"
    source.write_bytes(os.urandom(2 * PART + 1))
    config = EngineConfig(concurrency=1, backoff=Backoff(base=0.01, cap=0.05))
    first = CountingTransport()
    task = asyncio.ensure_future(
        upload_file(source, server.base_url, tmp_path / "state", config=config, storage_transport=first)
    )
    while not first.sent:
        first.part_done.clear()
        await first.part_done.wait()
    task.cancel()  # the terminal uploader is stopped mid-upload
    with pytest.raises(asyncio.CancelledError):
        await task

    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        before = scrape(http)
        flaky = CountingTransport(fail_attempts={1})  # the first PUT after the restart fails
        result = await upload_file(source, server.base_url, tmp_path / "state", config=config, storage_transport=flaky)
        assert result.ok and result.resumed, result.view
        after = scrape(http)
    assert moved(before, after, "smartcat_client_resumes_total", cause="restart") == 1
    assert moved(before, after, "smartcat_client_retries_total", failure_class="transient") == 1
    assert moved(before, after, "smartcat_client_resumed_uploads_ended_total", outcome="completed") == 1
    assert moved(before, after, "smartcat_client_throughput_bytes_per_second_count", size_class="8MiB_64MiB") == 1
    route = {"route": "/api/telemetry", "method": "POST"}
    assert moved(before, after, "smartcat_http_requests_total", status="202", **route) == 1


def _with_a_retry(session_id: str) -> Telemetry:
    telemetry = Telemetry()
    telemetry.observe("a", "", SessionCreated(1_700_000_000, session_id, "k", PART, 1), [], "uploading")
    failure = Failure(FailureKind.TRANSIENT, "x")
    telemetry.observe("a", session_id, PartFailed(1_700_000_001, 1, failure), [], "uploading")
    return telemetry


async def _report(base_url: str, telemetry: Telemetry, **client: Any) -> Reporter:
    async with httpx.AsyncClient(base_url=base_url, timeout=60, **client) as http:
        reporter = Reporter(telemetry, HttpxJson(http), lambda: 1_700_000_002.0)
        await reporter.flush()
    return reporter


async def test_a_batch_that_does_not_arrive_is_kept() -> None:
    telemetry = _with_a_retry("sess")
    unreachable = await _report(f"http://127.0.0.1:{free_port()}", telemetry)
    assert unreachable.batches_sent == 0
    kept = telemetry.take(1_700_000_003.0)
    assert kept is not None and [e.kind for e in kept.uploads[0].events] == ["retry"]


async def test_a_refused_batch_is_dropped(live_server: LiveServer) -> None:
    refused = _with_a_retry("not a session id")  # the server answers 422: sending it again cannot help
    reporter = await _report(live_server.base_url, refused)
    assert reporter.batches_sent == 0
    assert refused.take(1_700_000_003.0) is None, "4xx: dropped, not retried in a loop"
