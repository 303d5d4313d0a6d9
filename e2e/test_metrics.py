"""/metrics after a real browser upload that every tab left and the browser resumed after a restart: the server's
lifecycle counters and the counters the browser's telemetry feeds moved by exactly what happened."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.support.scrape import Samples, moved, scrape
from wire.plan import MiB

from .conftest import AppUnderTest, Browser, open_app, random_file, record_metric, sha256_file, wait_for
from .ui import pick

SIZE = 30 * MiB  # six 5 MiB parts
PART = 5 * MiB
BOOTS = "smartcat_client_worker_boot_seconds_count"


def _boots(samples: Samples) -> float:
    return sum(v for (name, _labels), v in samples.items() if name == BOOTS)


def test_counters_after_an_upload_resumed_after_its_tab_closed_and_the_browser_restarted(
    make_app, browser: Browser, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    app: AppUnderTest = make_app(part_size_bytes=PART, adaptive_part_size=False)
    source = random_file(tmp_path / "metrics.bin", SIZE)
    http = httpx.Client(base_url=app.server.base_url, timeout=30)
    before = scrape(http)
    app.proxy.state.rate_bytes_per_s = 8e6
    assert browser.context is not None
    page = open_app(browser.context, app)
    pick(page, source)
    wait_for(lambda: app.proxy.state.completed(), 60, "a part on S3")
    app.proxy.state.rate_bytes_per_s = 50e3  # hold the rest back: the upload must outlive this browser
    page.close()  # the last tab: the worker notes the close and sends its telemetry (boot)
    wait_for(lambda: _boots(scrape(http)) - _boots(before) >= 1, 60, "the first worker's telemetry")
    browser.close()  # later the browser quits
    assert app.objects() == [], "the upload must not finish before the browser quit"
    app.proxy.state.rate_bytes_per_s = None

    context = browser.launch()
    page = open_app(context, app)
    expect(page.locator(".upload", has_text="metrics.bin")).to_have_attribute("data-phase", "completed",
                                                                              timeout=120_000)
    assert app.only_object_sha256() == sha256_file(source)
    resumed = "smartcat_client_resumed_uploads_ended_total"
    def resumed_reported() -> Samples | None:
        samples = scrape(http)
        return samples if moved(before, samples, resumed, outcome="completed") >= 1 else None

    after = wait_for(resumed_reported, 60, "the resumed upload's telemetry")
    http.close()

    size_class = "8MiB_64MiB"
    assert moved(before, after, "smartcat_upload_sessions_created_total", size_class=size_class) == 1
    ended = "smartcat_upload_sessions_ended_total"
    assert moved(before, after, ended, outcome="completed", reason="", size_class=size_class) == 1
    assert moved(before, after, "smartcat_uploaded_bytes_total", size_class=size_class) == SIZE
    requests = "smartcat_http_requests_total"
    assert moved(before, after, requests, route="/api/uploads", method="POST", status="201") == 1
    complete = "/api/uploads/{session_id}/complete"
    assert moved(before, after, requests, route=complete, method="POST", status="200") == 1
    # The restarted worker asked S3 (through the server) which parts it held: a resume.
    assert moved(before, after, requests, route="/api/uploads/{session_id}", method="GET", status="200") >= 1
    assert moved(before, after, "smartcat_session_state_requests_total") >= 1
    # What only the browser saw: two workers booted, one resume because the tab was closed, which completed.
    assert _boots(after) - _boots(before) == 2
    assert moved(before, after, "smartcat_client_resumes_total", cause="tab_closed") == 1
    assert moved(before, after, "smartcat_client_resumes_total", cause="crash") == 0
    assert moved(before, after, resumed, outcome="completed") == 1
    throughput = "smartcat_client_throughput_bytes_per_second_count"
    assert moved(before, after, throughput, size_class=size_class) == 1
    batches = moved(before, after, requests, route="/api/telemetry", method="POST", status="202")
    assert batches == 2
    record_metric("telemetry_overhead", {"upload_bytes": SIZE, "telemetry_requests": batches,
                                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
