"""Two server instances behind nginx (no sticky sessions) on one PostgreSQL, one bucket and one Redis.

- An instance is SIGKILLed while a browser upload and a terminal upload run at once: both complete with the exact
  bytes (requests that met the dead instance fail, are retried, and nginx sends them to the live one).
- An instance is restarted during a burst of completions: every upload completes, its event is recorded once and
  the webhook receives every event exactly once (the stopping instance finishes the deliveries it has in flight
  and writes their receipts before it hands anything back: server/background.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect

from browser_py.adapters.cpython import UploadResult, upload_file
from tests.conftest import postgres  # noqa: F401 - the private PostgreSQL the instances share
from tests.scale.conftest import redis_server  # noqa: F401 - the Redis they count rate limits in
from tests.support.instances import ServerInstances
from tests.support.postgres import PostgresCluster
from tests.support.redis import RedisServer
from tests.support.s3_proxy import RunningProxy, s3_proxy
from tests.support.seaweed import SeaweedService
from wire.plan import MiB

from .conftest import Browser, random_file, sha256_file, wait_for
from .ui import pick

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@pytest.fixture(scope="module")
def proxy(seaweed: SeaweedService) -> Iterator[RunningProxy]:
    """Between clients and the store: counts part PUTs per upload and can slow them down."""
    with s3_proxy(seaweed.endpoint_url) as running:
        yield running


@pytest.fixture(scope="module")
def group(
    runtime_built: None,
    seaweed: SeaweedService,
    postgres: PostgresCluster,  # noqa: F811
    redis_server: RedisServer,  # noqa: F811
    proxy: RunningProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerInstances]:
    environment = {
        "S3_PUBLIC_ENDPOINT_URL": proxy.url,
        "ALLOWED_CONTENT_TYPES": "application/octet-stream,text/plain",
        "SNIFF_CONTENT": "false",
        "OUTBOX_POLL_SECONDS": "0.5",
    }
    work = tmp_path_factory.mktemp("scaleout")
    with ServerInstances(work, 2, postgres, seaweed, redis_server.url, environment) as instances:
        yield instances


def objects_sha256(s3: S3Client, bucket: str) -> set[str]:
    digests = set()
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        stream = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"]
        digests.add(hashlib.sha256(stream.read()).hexdigest())
    return digests


def test_an_instance_killed_mid_upload_loses_no_upload(
    group: ServerInstances, proxy: RunningProxy, browser: Browser, s3: S3Client, tmp_path: Path
) -> None:
    web_file = random_file(tmp_path / "from-the-browser.bin", 40 * MiB)
    cli_file = random_file(tmp_path / "from-the-terminal.bin", 40 * MiB)
    proxy.state.rate_bytes_per_s = 12e6  # both take seconds: the kill lands between their first and last parts
    assert browser.context is not None
    page = browser.context.new_page()
    page.goto(group.origin + "/")
    page.wait_for_selector('#engine[data-state="ready"]', timeout=60_000)
    pick(page, web_file)

    results: list[UploadResult] = []
    cli = threading.Thread(
        target=lambda: results.append(asyncio.run(upload_file(cli_file, group.origin, tmp_path / "cli-state")))
    )
    cli.start()
    try:
        wait_for(lambda: len({p.upload_id for p in proxy.state.completed()}) >= 2, 120, "parts of both uploads")
        group.kill(0)
        assert s3.list_objects_v2(Bucket=group.bucket).get("KeyCount", 0) == 0, "both were mid-upload at the kill"
        proxy.state.rate_bytes_per_s = None
        card = page.locator(".upload", has_text="from-the-browser.bin")
        expect(card).to_have_attribute("data-phase", "completed", timeout=180_000)
        cli.join(180)
        assert results and results[0].ok, results
    finally:
        proxy.state.rate_bytes_per_s = None
        cli.join(180)
        group.start(0)
    assert objects_sha256(s3, group.bucket) == {sha256_file(web_file), sha256_file(cli_file)}
    assert not s3.list_multipart_uploads(Bucket=group.bucket).get("Uploads")


CONTENT = b"one small part\n" * 64
CHECKSUM = base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()


def _started_session(origin: str) -> tuple[httpx.Client, str, str]:
    """A new user's upload with its one part in the store: (client, session id, the part's ETag)."""
    client = httpx.Client(base_url=origin, timeout=30.0)
    body = {
        "file_name": "burst.txt",
        "size": len(CONTENT),
        "content_type": "text/plain",
        "checksum_algorithm": "SHA256",
    }
    session = client.post("/api/uploads", json=body).json()["session_id"]
    parts = {"parts": [{"part_number": 1, "checksum_sha256": CHECKSUM}]}
    url = client.post(f"/api/uploads/{session}/urls", json=parts).json()["urls"][0]["url"]
    put = httpx.put(url, content=CONTENT, headers={"x-amz-checksum-sha256": CHECKSUM}, timeout=30.0)
    assert put.status_code == 200, put.text
    return client, session, put.headers["etag"]


def _complete(client: httpx.Client, session: str, etag: str) -> dict[str, Any]:
    """POST complete until it answers 200, as the engine does: a 502 from nginx (the instance went away under the
    request) or a cut connection is retried; complete is idempotent on the server."""
    parts = {"parts": [{"part_number": 1, "etag": etag}]}
    deadline = time.monotonic() + 90
    while True:
        try:
            response = client.post(f"/api/uploads/{session}/complete", json=parts)
            if response.status_code == 200:
                answer: dict[str, Any] = response.json()
                return answer
            assert response.status_code in {502, 503, 504}, response.text
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"complete of {session} never answered 200"
        time.sleep(0.2)


def test_an_instance_restarted_during_a_burst_of_completions_duplicates_and_loses_nothing(
    group: ServerInstances,
) -> None:
    waves = 3
    per_wave = 8
    with ThreadPoolExecutor(per_wave) as pool:
        sessions = list(pool.map(lambda _n: _started_session(group.origin), range(waves * per_wave)))
        try:
            answers = []
            first = [pool.submit(_complete, *s) for s in sessions[:per_wave]]
            group.stop(1)  # graceful: what instance 1 is answering finishes, new requests go to instance 0
            second = [pool.submit(_complete, *s) for s in sessions[per_wave : 2 * per_wave]]
            group.start(1)
            third = [pool.submit(_complete, *s) for s in sessions[2 * per_wave :]]
            answers = [future.result() for future in (*first, *second, *third)]
        finally:
            for client, _session, _etag in sessions:
                client.close()
    assert [answer["status"] for answer in answers] == ["completed"] * len(sessions)
    events = group.events()
    assert events["completed_events"] == events["completed_sessions"] >= len(sessions)
    assert events["duplicated_events"] == 0, events
    assert events["undelivered_events"] == 0, events
    # Every event reached the webhook once: a graceful stop drains deliveries in flight (it used to cancel one the
    # receiver had already taken, before its receipt was written, and the other instance repeated it).
    assert events["webhook_missing"] == 0, events
    assert events["webhook_duplicates"] == 0, events
