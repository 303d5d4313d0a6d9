"""``/metrics``: the lifecycle counters move by what really happened, HTTP answers are counted by route template,
the outbox backlog is read from the database at scrape time, and only the monitoring system may read it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from server.clock import utcnow
from server.db import Database
from server.metrics import OutboxCollector, size_class
from server.models import DeliveryStatus, OutboxEvent
from server.routers.metrics import may_scrape, outbox_backlog
from server.settings import REPO_ROOT
from tests.support.live_server import LiveServer, MakeLiveServer, isolated_settings
from tests.support.scrape import moved, scrape, value
from tests.support.uploads import MiB, create_session, upload_all

SIZE = 5 * MiB + 7  # two parts of 5 MiB: a small file


def test_a_completed_and_an_aborted_upload_move_the_lifecycle_counters(
    client: httpx.Client, live_server: LiveServer
) -> None:
    before = scrape(client)
    data = os.urandom(SIZE)
    session = create_session(client, SIZE, part_size=5 * MiB)
    parts = upload_all(client, session, data)
    done = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})
    assert done.status_code == 200, done.text
    cancelled = create_session(client, 10)
    assert client.delete(f"/api/uploads/{cancelled['session_id']}").status_code == 204
    assert client.get("/api/uploads/no-such-session").status_code == 404
    after = scrape(client)

    sizes, small = size_class(SIZE), size_class(10)
    assert sizes == small == "lt_8MiB"
    assert moved(before, after, "smartcat_upload_sessions_created_total", size_class=sizes) == 2
    ended = "smartcat_upload_sessions_ended_total"
    assert moved(before, after, ended, outcome="completed", reason="", size_class=sizes) == 1
    assert moved(before, after, ended, outcome="aborted", reason="cancelled", size_class=sizes) == 1
    assert moved(before, after, "smartcat_uploaded_bytes_total", size_class=sizes) == SIZE
    assert moved(before, after, "smartcat_upload_duration_seconds_count", size_class=sizes) == 1
    assert moved(before, after, "smartcat_upload_throughput_bytes_per_second_count", size_class=sizes) == 1
    # Two sessions started with their first URLs; the plain client asked once more (both parts were in the first).
    assert moved(before, after, "smartcat_url_requests_total", kind="first") == 2
    assert moved(before, after, "smartcat_part_urls_signed_total") == 2 + 1

    requests = "smartcat_http_requests_total"
    complete = "/api/uploads/{session_id}/complete"
    assert moved(before, after, requests, route=complete, method="POST", status="200") == 1
    assert moved(before, after, requests, route="/api/uploads", method="POST", status="201") == 2
    assert moved(before, after, requests, route="/api/uploads/{session_id}", method="GET", status="404") == 1
    latency = "smartcat_http_request_duration_seconds_count"
    assert moved(before, after, latency, route=complete, method="POST") == 1
    # Ids never become label values.
    assert not any(session["session_id"] in str(labels) for _, labels in after)


def test_unmatched_paths_share_one_series(client: httpx.Client) -> None:
    before = scrape(client)
    for path in ("/nope-1", "/nope-2", "/api/nope/3"):
        assert client.get(path).status_code == 404
    after = scrape(client)
    series = "smartcat_http_requests_total"
    assert moved(before, after, series, route="unmatched", method="GET", status="404") == 3
    assert not any("nope" in str(labels) for _, labels in after)


def test_outbox_backlog_is_read_from_the_database(database_url: str) -> None:
    database = Database(database_url)
    try:
        database.migrate()
        assert outbox_backlog(database) == (0, None)
        created = utcnow() - timedelta(minutes=5)
        with database.sessions() as db:
            for n, status in enumerate([DeliveryStatus.PENDING, DeliveryStatus.PENDING, DeliveryStatus.DELIVERED]):
                db.add(
                    OutboxEvent(
                        event_id=f"e{n}",
                        type="upload_completed",
                        session_id=f"s{n}",
                        owner_id="o",
                        payload="{}",
                        created_at=created + timedelta(minutes=n),
                        status=status.value,
                    )
                )
            db.commit()
        assert outbox_backlog(database) == (2, created)
    finally:
        database.dispose()


def test_the_scrape_reports_the_backlog(client: httpx.Client) -> None:
    samples = scrape(client)
    assert ("smartcat_outbox_pending_events", frozenset()) in samples
    assert value(samples, "smartcat_outbox_oldest_pending_age_seconds") >= 0


@pytest.mark.parametrize("origin", ["https://uploads.example.com", "http://10.0.0.5:8000"])
def test_without_a_token_production_serves_no_metrics(origin: str) -> None:
    settings = isolated_settings(
        public_origin=origin, s3_access_key_id="k" * 20, s3_secret_access_key="s" * 40, secret_key="x" * 40
    )
    assert not may_scrape(settings, None)
    assert not may_scrape(settings, "Bearer ")
    assert may_scrape(isolated_settings(), None)  # development: 127.0.0.1


def test_with_a_token_only_its_bearer_reads_metrics(make_live_server: MakeLiveServer) -> None:
    token = "metrics-token-0123456789"
    server = make_live_server(metrics_token=token)
    with server.client() as http:
        assert http.get("/metrics").status_code == 404
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 404
        assert http.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 404
        assert http.get("/metrics", params={"token": token}).status_code == 404
        samples = scrape(http, Authorization=f"Bearer {token}")
    assert value(samples, "smartcat_http_requests_total", route="/metrics", method="GET", status="404") >= 4


def test_the_readme_documents_every_metric() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("smartcat_")
    }
    scraped = {family.name for family in OutboxCollector(lambda: (0, None)).collect()}
    undocumented = sorted(name for name in exported | scraped if f"`{name}`" not in readme)
    assert not undocumented, f"README.md does not document {undocumented}"


def test_several_processes_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, each process writes its samples there and any process's scrape sums them."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from server import metrics; metrics.session_created(10); metrics.session_created(20)"
    subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    show = f"{count}; import sys; sys.stdout.write(metrics.render(metrics.OutboxCollector(lambda: (0, None))).decode())"
    text = subprocess.run([sys.executable, "-c", show], env=env, check=True, timeout=60, capture_output=True).stdout
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }
    assert samples[("smartcat_upload_sessions_created_total", frozenset({("size_class", "lt_8MiB")}))] == 4
    assert ("smartcat_outbox_pending_events", frozenset()) in samples
