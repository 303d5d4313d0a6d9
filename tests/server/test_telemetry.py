"""``POST /api/telemetry``: a batch the engine's accumulator makes is accepted for the caller's own sessions and
moves the client metrics; others' sessions are ignored; malformed or oversized batches are refused with a clear
4xx; batches are rate-limited."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import pytest

from browser_py.adapters.cpython import HttpxJson
from browser_py.engine.commands import SendPart
from browser_py.engine.events import ApiCall, PartFailed, PartSent, RequestFailed, SessionCreated, UploadCompleted
from browser_py.engine.failures import Failure, FailureKind
from browser_py.engine.telemetry import Telemetry
from browser_py.reporting import Reporter
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.scrape import moved, scrape
from tests.support.uploads import MiB, create_session
from wire.telemetry import MAX_EVENTS, MAX_UPLOADS, TELEMETRY_PATH


def _batch(session_id: str, now: float) -> dict[str, Any]:
    """What a browser sends after an upload that resumed after its tab closed, retried twice and completed."""
    telemetry = Telemetry()
    telemetry.booted("snapshot", 0.8)
    telemetry.resumed("local", session_id, now - 10, "tab_closed")
    telemetry.observe("local", session_id, SessionCreated(now - 10, session_id, "k", 8 * MiB, 1), [], "uploading")
    send = SendPart(1, 0, 8 * MiB, "https://s3/1", "c2hh")
    telemetry.observe("local", session_id, PartFailed(now - 9, 1, Failure(FailureKind.BAD_DIGEST, "x")), [send], "x")
    failure = Failure(FailureKind.TRANSIENT, "network error")
    telemetry.observe("local", session_id, RequestFailed(now - 8, ApiCall.URLS, failure), [], "uploading")
    telemetry.observe("local", session_id, PartSent(now - 5, 1, "etag"), [], "completing")
    telemetry.observe("local", session_id, UploadCompleted(now - 4, "etag"), [], "completed")
    batch = telemetry.take(now)
    assert batch is not None
    return batch.to_json()


def test_a_batch_for_my_session_moves_the_client_metrics(client: httpx.Client) -> None:
    session = create_session(client, 8 * MiB)
    before = scrape(client)
    answer = client.post(TELEMETRY_PATH, json=_batch(session["session_id"], time.time()))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 1, "ignored": 0}
    after = scrape(client)
    assert moved(before, after, "smartcat_client_retries_total", failure_class="bad_digest") == 1
    assert moved(before, after, "smartcat_client_retries_total", failure_class="transient") == 1
    assert moved(before, after, "smartcat_checksum_failures_total", where="part") == 1
    assert moved(before, after, "smartcat_client_resumes_total", cause="tab_closed") == 1
    assert moved(before, after, "smartcat_client_resumed_uploads_ended_total", outcome="completed") == 1
    assert moved(before, after, "smartcat_client_throughput_bytes_per_second_count", size_class="8MiB_64MiB") == 1
    assert moved(before, after, "smartcat_client_worker_boot_seconds_count", mode="snapshot") == 1
    assert moved(before, after, "smartcat_telemetry_events_total", kind="retry") == 2


def test_another_users_session_is_ignored(live_server: LiveServer) -> None:
    with live_server.client() as owner, live_server.client() as stranger:
        session = create_session(owner, 10)
        before = scrape(stranger)
        answer = stranger.post(TELEMETRY_PATH, json=_batch(session["session_id"], time.time()))
        assert answer.status_code == 202
        assert answer.json() == {"accepted": 0, "ignored": 1}
        after = scrape(stranger)
    assert moved(before, after, "smartcat_client_resumes_total", cause="tab_closed") == 0
    assert moved(before, after, "smartcat_telemetry_events_total", kind="retry") == 0


def _event(**fields: Any) -> dict[str, Any]:
    return {"at": 1_700_000_000.0, "kind": "retry", "detail": "transient", "value": 0, **fields}


def _one(*events: dict[str, Any], **batch: Any) -> dict[str, Any]:
    return {"uploads": [{"session_id": "abc", "events": list(events)}], "sent_at": 1_700_000_001.0, **batch}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (_one(_event(kind="keystrokes")), "kind"),
        (_one(_event(detail="file.pdf")), "detail"),
        (_one(_event(kind="resumed", detail="because")), "detail"),
        (_one(_event(value=-1)), "value"),
        (_one(_event(value=math.inf)), "value"),
        (_one(_event(value=1e13)), "value"),
        (_one(_event(file_name="secret.pdf")), "file_name"),
        (_one(_event(at=1_600_000_000.0)), "week"),  # long before the batch was sent
        (_one(_event(at=1_800_000_000.0)), "week"),  # after it
        ({"uploads": [{"session_id": "a b", "events": []}], "sent_at": 1.0}, "session_id"),
        (
            {"uploads": [{"session_id": f"s{n}", "events": []} for n in range(MAX_UPLOADS + 1)], "sent_at": 1.0},
            "uploads",
        ),
        (_one(*[_event()] * (MAX_EVENTS + 1)), "events"),
        ({"uploads": [], "sent_at": 1.0, "boot": {"mode": "turbo", "seconds": 1}}, "mode"),
        ({"uploads": [], "sent_at": 1.0, "user_agent": "Mozilla"}, "user_agent"),
        ({"uploads": [{"session_id": "a", "events": []}] * 2, "sent_at": 1.0}, "once"),
    ],
)
def test_malformed_batches_are_refused_naming_the_problem(
    client: httpx.Client, body: dict[str, Any], where: str
) -> None:
    # json.dumps writes Infinity as browsers' JSON.stringify never would: the server must refuse it anyway.
    answer = client.post(TELEMETRY_PATH, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert where in answer.text
    assert "secret.pdf" not in answer.text and "Mozilla" not in answer.text  # 422s never echo input


def test_an_oversized_batch_is_refused_before_it_is_read(client: httpx.Client) -> None:
    answer = client.post(
        TELEMETRY_PATH, content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413


async def test_batches_are_rate_limited_and_the_reporter_keeps_them(make_live_server: MakeLiveServer) -> None:
    server = make_live_server(rate_limit_telemetry="2/minute")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        body = {"uploads": [], "sent_at": time.time()}
        assert [(await http.post(TELEMETRY_PATH, json=body)).status_code for _ in range(2)] == [202, 202]
        refused = await http.post(TELEMETRY_PATH, json=body)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        # The engine's reporter keeps a rate-limited batch for the next one.
        telemetry = Telemetry()
        telemetry.booted("plain", 1.0)
        reporter = Reporter(telemetry, HttpxJson(http), time.time)
        await reporter.flush()
    assert reporter.batches_sent == 0
    kept = telemetry.take(time.time())
    assert kept is not None and kept.boot is not None
