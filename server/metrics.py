"""Every Prometheus metric the service exports, in one place, and how ``/metrics`` is rendered.

Counters and histograms are module-level (prometheus-client's default registry) and moved where the fact happens:
the lifecycle service (:mod:`server.uploads.service`) for sessions, the scanner for scans, the notifier for
notifications, the HTTP middleware (:mod:`server.http_metrics`) for requests, the telemetry endpoint for what only
browsers see. Gauges that describe the database (the outbox backlog) are read at scrape time by
:class:`OutboxCollector`, so every instance reports the same truth and nothing has to keep them current.

Several processes: ``python -m server`` with ``WORKERS`` > 1 gives its workers a private, empty
``PROMETHEUS_MULTIPROC_DIR`` (:mod:`server.workers`; other process managers: set it to an empty directory before
the workers start, cleared at each deployment); every process then writes its samples there and any process's
``/metrics`` aggregates them all (prometheus-client's multiprocess mode): counters and histograms summed, the
per-worker gauge one series per live worker. Separate machines are scraped one by one.
Label values are always from closed sets (route templates, enum values, size classes), never ids or user input, so
the number of series stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.clock import utcnow

MiB = 1024**2
GiB = 1024**3
#: Upper bounds of the size classes uploads are grouped by (bytes), with their label.
_SIZE_CLASSES = ((8 * MiB, "lt_8MiB"), (64 * MiB, "8MiB_64MiB"), (512 * MiB, "64MiB_512MiB"), (4 * GiB, "512MiB_4GiB"))
LARGEST_CLASS = "ge_4GiB"
SIZE_CLASSES = (*(label for _, label in _SIZE_CLASSES), LARGEST_CLASS)


def size_class(size: int) -> str:
    """The size class label of a file of ``size`` bytes."""
    return next((label for bound, label in _SIZE_CLASSES if size < bound), LARGEST_CLASS)


_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LONG_SECONDS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
#: 128 KiB/s … 1 GiB/s.
_RATES = tuple(float(2**e) for e in range(17, 31))

# ---- HTTP ---------------------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "smartcat_http_requests", "HTTP requests answered, by route template", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "smartcat_http_request_duration_seconds", "Time to answer, by route template", ["route", "method"], buckets=_SECONDS
)
#: One series per live worker process in multiprocess mode (a ``pid`` label): how evenly they share the requests.
WORKER_REQUESTS = Gauge(
    "smartcat_worker_http_requests",
    "HTTP requests this worker process answered since it started",
    multiprocess_mode="liveall",
)

# ---- upload lifecycle (server/uploads/service.py) -----------------------------------------------------------------
SESSIONS_CREATED = Counter("smartcat_upload_sessions_created", "Upload sessions started", ["size_class"])
SESSIONS_ENDED = Counter(
    "smartcat_upload_sessions_ended",
    "Upload sessions that reached a final state (outcome: completed, failed, expired, aborted, blocked)",
    ["outcome", "reason", "size_class"],
)
UPLOADED_BYTES = Counter("smartcat_uploaded_bytes", "Bytes of completed uploads", ["size_class"])
UPLOAD_DURATION = Histogram(
    "smartcat_upload_duration_seconds",
    "Session start to completion",
    ["size_class"],
    buckets=_LONG_SECONDS,
)
UPLOAD_THROUGHPUT = Histogram(
    "smartcat_upload_throughput_bytes_per_second",
    "Size over session start to completion (includes pauses and time offline)",
    ["size_class"],
    buckets=_RATES,
)
URL_REQUESTS = Counter("smartcat_url_requests", "Requests for part URLs (at creation and later)", ["kind"])
URLS_SIGNED = Counter("smartcat_part_urls_signed", "Presigned part URLs issued")
STATE_REQUESTS = Counter(
    "smartcat_session_state_requests", "Session state asked for (a client resuming or checking what S3 holds)"
)
CHECKSUM_FAILURES = Counter(
    "smartcat_checksum_failures",
    "Checksum mismatches (where: composite = S3 assembled other bytes; part = S3 refused a part, client-reported)",
    ["where"],
)

# ---- malware scanning (server/scan/) ------------------------------------------------------------------------------
SCAN_OUTCOMES = Counter("smartcat_scan_outcomes", "Scan verdicts recorded", ["verdict"])
SCAN_DURATION = Histogram(
    "smartcat_scan_duration_seconds", "Streaming one object through clamd", ["size_class"], buckets=_LONG_SECONDS
)
SCAN_WAIT = Histogram(
    "smartcat_scan_wait_seconds", "Completion to verdict: how long a file stays in quarantine", buckets=_LONG_SECONDS
)
SCAN_ERRORS = Counter("smartcat_scan_errors", "Scan attempts that failed and will be retried (scanner or storage)")

# ---- notifications (server/notify/) -------------------------------------------------------------------------------
NOTIFICATIONS = Counter(
    "smartcat_notifications",
    "Notification messages by channel and outcome (sent, skipped, refused, retry, given_up)",
    ["channel", "outcome"],
)

# ---- client telemetry (server/telemetry/) -------------------------------------------------------------------------
CLIENT_RETRIES = Counter("smartcat_client_retries", "Part or service retries browsers report", ["failure_class"])
CLIENT_STALLS = Counter("smartcat_client_stalls", "Part PUTs browsers aborted as stalled")
CLIENT_OFFLINE_PERIODS = Counter("smartcat_client_offline_periods", "Times uploads waited for the network")
CLIENT_OFFLINE_SECONDS = Histogram(
    "smartcat_client_offline_seconds", "Length of each period uploads waited for the network", buckets=_LONG_SECONDS
)
CLIENT_RESUMES = Counter(
    "smartcat_client_resumes", "Uploads resumed by browsers, by cause (tab_closed, crash, network)", ["cause"]
)
CLIENT_RESUMED_ENDED = Counter(
    "smartcat_client_resumed_uploads_ended", "Resumed uploads that ended, by outcome (completed, failed)", ["outcome"]
)
CLIENT_THROUGHPUT = Histogram(
    "smartcat_client_throughput_bytes_per_second",
    "Throughput browsers achieved while sending (bytes sent over time sending)",
    ["size_class"],
    buckets=_RATES,
)
CLIENT_BOOT = Histogram(
    "smartcat_client_worker_boot_seconds", "Upload worker start to ready, by boot mode", ["mode"], buckets=_SECONDS
)
TELEMETRY_EVENTS = Counter("smartcat_telemetry_events", "Telemetry events accepted from browsers", ["kind"])


class OutboxCollector(Collector):
    """The outbox's backlog, read from the database when scraped: ``backlog()`` returns (pending events, creation
    time of the oldest pending one)."""

    def __init__(self, backlog: Callable[[], tuple[int, datetime | None]]) -> None:
        self._backlog = backlog

    def collect(self) -> Iterator[Metric]:
        pending, oldest = self._backlog()
        yield GaugeMetricFamily("smartcat_outbox_pending_events", "Outbox events not yet delivered", value=pending)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "smartcat_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered outbox event (0 when none)",
            value=max(0.0, age),
        )


def render(scrape_time: Collector) -> bytes:
    """The exposition text: this process's metrics (or every process's, in multiprocess mode) and the
    ``scrape_time`` collector's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
        text = generate_latest(processes)
    else:
        text = generate_latest(REGISTRY)
    database = CollectorRegistry(auto_describe=False)
    database.register(scrape_time)
    return text + generate_latest(database)


# ---- where the facts happen: small functions so callers move metrics in one line ----------------------------------


def session_created(size: int) -> None:
    SESSIONS_CREATED.labels(size_class(size)).inc()


def session_ended(outcome: str, reason: str, size: int, started: datetime, ended: datetime) -> None:
    """A session reached a final state; a completion also records its bytes, duration and throughput."""
    sizes = size_class(size)
    SESSIONS_ENDED.labels(outcome, reason, sizes).inc()
    if outcome != "completed":
        return
    seconds = max((ended - started).total_seconds(), 1e-3)
    UPLOADED_BYTES.labels(sizes).inc(size)
    UPLOAD_DURATION.labels(sizes).observe(seconds)
    UPLOAD_THROUGHPUT.labels(sizes).observe(size / seconds)


def scan_recorded(verdict: str, size: int, completed: datetime | None, at: datetime) -> None:
    """A verdict was recorded; ``infected`` and ``too_large`` block the upload."""
    SCAN_OUTCOMES.labels(verdict).inc()
    if completed is not None:
        SCAN_WAIT.observe(max(0.0, (at - completed).total_seconds()))
    if verdict in ("infected", "too_large"):
        SESSIONS_ENDED.labels("blocked", "malware" if verdict == "infected" else "too_large", size_class(size)).inc()
