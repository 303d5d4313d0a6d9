"""The engine's CPython adapter against the real presign server and real SeaweedFS."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from browser_py.adapters.cpython import DirectoryManifestStore, upload_file, upload_files
from browser_py.engine.backoff import Backoff
from browser_py.engine.phase import RUNNING
from browser_py.engine.upload import EngineConfig
from tests.support.live_server import LiveServer
from wire.plan import MiB
from wire.view import UploadView

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PART = 8 * MiB


def make_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def sha256_of_object(s3: S3Client, bucket: str, key: str) -> str:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1024 * 1024), b""):
        digest.update(chunk)
    return digest.hexdigest()


def only_object(s3: S3Client, bucket: str) -> str:
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert len(objects) == 1, f"expected exactly one object, found {[o['Key'] for o in objects]}"
    return objects[0]["Key"]


def no_multipart_left(s3: S3Client, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


class CountingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport: counts part PUT bytes and can fail chosen attempts before they reach S3."""

    def __init__(self, fail_attempts: set[int] | None = None) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.fail_attempts = fail_attempts or set()
        self.attempts = 0
        self.sent: list[tuple[int, int]] = []  # (part number, bytes) of PUTs S3 answered 200
        self.part_done = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts in self.fail_attempts:
            raise httpx.ConnectError("injected connection reset")
        response = await self._inner.handle_async_request(request)
        if request.method == "PUT" and response.status_code == 200:
            self.sent.append((int(request.url.params["partNumber"]), len(request.content)))
            self.part_done.set()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_upload_lands_with_the_exact_bytes(live_server: LiveServer, s3: S3Client, tmp_path: Path) -> None:
    source = make_file(tmp_path / "source.bin", 3 * PART + 12345)
    views: list[UploadView] = []
    result = await upload_file(source, live_server.base_url, tmp_path / "state", on_view=views.append)
    assert result.ok, result.view
    bucket = live_server.settings.s3_bucket
    key = only_object(s3, bucket)
    assert sha256_of_object(s3, bucket, key) == hashlib.sha256(source.read_bytes()).hexdigest()
    assert no_multipart_left(s3, bucket)
    assert [v.phase for v in views][-1] == "completed"
    assert DirectoryManifestStore(tmp_path / "state" / "manifests").load_all() == [], "state is cleaned up"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == source.stat().st_size


async def test_interrupted_upload_resumes_and_resends_at_most_the_parts_in_flight(
    make_live_server: Any, s3: S3Client, tmp_path: Path
) -> None:
    server: LiveServer = make_live_server()
    source = make_file(tmp_path / "big.bin", 10 * PART + 1)
    concurrency = 2
    config = EngineConfig(concurrency=concurrency)
    first = CountingTransport()

    async def interrupt_after_three_parts() -> None:
        task = asyncio.ensure_future(
            upload_file(source, server.base_url, tmp_path / "state", config=config, storage_transport=first)
        )
        while len(first.sent) < 3:
            first.part_done.clear()
            await first.part_done.wait()
        task.cancel()  # the process dies mid-upload
        with pytest.raises(asyncio.CancelledError):
            await task

    await interrupt_after_three_parts()
    confirmed_before = {n for n, _ in first.sent}
    assert len(confirmed_before) < 11, "the upload must have been interrupted before the end"

    second = CountingTransport()
    result = await upload_file(source, server.base_url, tmp_path / "state", config=config, storage_transport=second)
    assert result.ok and result.resumed, result.view
    resent = [(n, size) for n, size in second.sent if n in confirmed_before]
    assert resent == [], "parts S3 confirmed before the interruption are never sent again"
    # Bytes sent after the resume = what was missing + at most the parts that were in flight.
    missing = sum(PART if n <= 10 else 1 for n in range(1, 12) if n not in confirmed_before)
    assert sum(size for _, size in second.sent) <= missing
    bucket = server.settings.s3_bucket
    assert sha256_of_object(s3, bucket, only_object(s3, bucket)) == hashlib.sha256(source.read_bytes()).hexdigest()
    assert no_multipart_left(s3, bucket)


async def test_connection_resets_are_retried(make_live_server: Any, s3: S3Client, tmp_path: Path) -> None:
    server: LiveServer = make_live_server()
    source = make_file(tmp_path / "f.bin", 3 * PART)
    flaky = CountingTransport(fail_attempts={1, 2, 4})
    config = EngineConfig(concurrency=2, backoff=Backoff(base=0.01, cap=0.05))
    result = await upload_file(source, server.base_url, tmp_path / "s", config=config, storage_transport=flaky)
    assert result.ok, result.view
    assert sorted(n for n, _ in flaky.sent) == [1, 2, 3]
    bucket = server.settings.s3_bucket
    assert sha256_of_object(s3, bucket, only_object(s3, bucket)) == hashlib.sha256(source.read_bytes()).hexdigest()


async def test_retry_budget_exhausted_reports_action_needed(make_live_server: Any, tmp_path: Path) -> None:
    server: LiveServer = make_live_server()
    source = make_file(tmp_path / "f.bin", 1024)
    always = CountingTransport(fail_attempts=set(range(1, 100)))
    config = EngineConfig(concurrency=1, backoff=Backoff(base=0.001, cap=0.001, max_attempts=3))
    result = await upload_file(source, server.base_url, tmp_path / "s", config=config, storage_transport=always)
    assert not result.ok
    assert result.view.phase == "failed"
    assert result.view.label.startswith("Action needed: network error")
    assert result.view.actions == ("retry", "cancel", "copy", "dismiss")
    manifests = DirectoryManifestStore(tmp_path / "s" / "manifests").load_all()
    assert len(manifests) == 1 and manifests[0].session_id, "the failed upload can still be resumed later"


async def test_unreachable_service_fails_clearly(tmp_path: Path) -> None:
    source = make_file(tmp_path / "f.bin", 10)
    config = EngineConfig(backoff=Backoff(base=0.001, cap=0.001, max_attempts=2))
    result = await upload_file(source, "http://127.0.0.1:9", tmp_path / "s", config=config)
    assert not result.ok
    assert "network error" in result.view.label


async def test_empty_file_uploads(live_server: LiveServer, s3: S3Client, tmp_path: Path) -> None:
    source = make_file(tmp_path / "empty.txt", 0)
    result = await upload_file(source, live_server.base_url, tmp_path / "state-empty")
    assert result.ok, result.view
    bucket = live_server.settings.s3_bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    sizes = {s3.head_object(Bucket=bucket, Key=k)["ContentLength"] for k in keys}
    assert 0 in sizes


def test_command_line_uploader(make_live_server: Any, s3: S3Client, tmp_path: Path) -> None:
    server: LiveServer = make_live_server()
    source = make_file(tmp_path / "cli.bin", PART + 7)
    done = subprocess.run(
        [sys.executable, "-m", "browser_py.cli", str(source), "--server", server.base_url,
         "--state-dir", str(tmp_path / "state"), "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "uploaded cli.bin" in done.stdout
    bucket = server.settings.s3_bucket
    assert sha256_of_object(s3, bucket, only_object(s3, bucket)) == hashlib.sha256(source.read_bytes()).hexdigest()


def test_command_line_refuses_a_missing_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "browser_py.cli", str(tmp_path / "nope.bin")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "is not a readable file" in done.stderr


class CorruptingTransport(CountingTransport):
    """Flips one byte of the first PUT of ``part``: S3 must refuse it (BadDigest) and the engine send it again."""

    def __init__(self, part: int) -> None:
        super().__init__()
        self.part = part
        self.corrupted = 0
        self.refused: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and int(request.url.params["partNumber"]) == self.part and not self.corrupted:
            self.corrupted += 1
            body = bytearray(request.content)
            body[len(body) // 2] ^= 0x01
            request = httpx.Request(request.method, request.url, headers=request.headers, content=bytes(body))
        response = await super().handle_async_request(request)
        if response.status_code == 400:
            await response.aread()
            if b"BadDigest" in response.content:
                self.refused.append(int(request.url.params["partNumber"]))
        return response


async def test_bytes_damaged_in_flight_are_refused_and_sent_again(
    make_live_server: Any, s3: S3Client, tmp_path: Path
) -> None:
    server: LiveServer = make_live_server()
    source = make_file(tmp_path / "f.bin", 3 * PART + 5)
    flipper = CorruptingTransport(part=2)
    config = EngineConfig(concurrency=2, backoff=Backoff(base=0.01, cap=0.05))
    result = await upload_file(source, server.base_url, tmp_path / "s", config=config, storage_transport=flipper)
    assert result.ok, result.view
    assert flipper.refused == [2], "S3 refused the damaged part"
    assert sorted(n for n, _ in flipper.sent) == [1, 2, 3, 4]
    bucket = server.settings.s3_bucket
    assert sha256_of_object(s3, bucket, only_object(s3, bucket)) == hashlib.sha256(source.read_bytes()).hexdigest()


async def test_several_files_follow_the_browser_policy(live_server: LiveServer, s3: S3Client, tmp_path: Path) -> None:
    """One at a time (parallel 1), oldest first, the same file given twice uploaded once, every object exact."""
    sources = [make_file(tmp_path / f"f{i}.bin", PART + i) for i in range(3)]
    phases: dict[str, str] = {}
    most_running = 0
    notices: list[str] = []

    def seen(view: UploadView) -> None:
        nonlocal most_running
        phases[view.file_name] = view.phase
        most_running = max(most_running, sum(p in {r.value for r in RUNNING} for p in phases.values()))

    results = await upload_files(
        [*sources, sources[0]], live_server.base_url, tmp_path / "state",
        config=EngineConfig(parallel_uploads=1), on_view=seen, on_notice=notices.append,
    )
    assert [r.view.file_name for r in results] == ["f0.bin", "f1.bin", "f2.bin"]
    assert all(r.ok for r in results), [r.view.label for r in results]
    assert notices == ["f0.bin is already in your uploads"]
    assert most_running == 1, "parallel_uploads=1 must hold"
    bucket = live_server.settings.s3_bucket
    sessions = {str(r.view.session_id) for r in results}
    assert len(sessions) == 3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if any(s in o["Key"] for s in sessions)]
    assert sorted(sha256_of_object(s3, bucket, key) for key in keys) == sorted(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in sources
    )


class PortalTransport(CountingTransport):
    """A captive portal: answers the PUTs of ``attempts`` (counted over all requests) itself, 200 with a web page,
    never reaching S3."""

    PAGE = b"<!DOCTYPE html><html><body>Accept the terms to use this Wi-Fi</body></html>"

    def __init__(self, portal_attempts: set[int]) -> None:
        super().__init__()
        self.portal_attempts = portal_attempts
        self.portal_answers = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and self.attempts + 1 in self.portal_attempts:
            self.attempts += 1
            self.portal_answers += 1
            return httpx.Response(200, headers={"content-type": "text/html"}, content=self.PAGE, request=request)
        return await super().handle_async_request(request)


async def test_a_portal_page_is_not_a_stored_part(make_live_server: Any, s3: S3Client, tmp_path: Path) -> None:
    server: LiveServer = make_live_server()
    source = make_file(tmp_path / "f.bin", 3 * PART)
    portal = PortalTransport(portal_attempts={1, 3})
    config = EngineConfig(concurrency=1, backoff=Backoff(base=0.01, cap=0.05))
    result = await upload_file(source, server.base_url, tmp_path / "s", config=config, storage_transport=portal)
    assert result.ok, result.view
    assert portal.portal_answers == 2
    assert sorted(n for n, _ in portal.sent) == [1, 2, 3], "each part stored once, by S3"
    bucket = server.settings.s3_bucket
    assert sha256_of_object(s3, bucket, only_object(s3, bucket)) == hashlib.sha256(source.read_bytes()).hexdigest()


async def test_a_portal_in_the_way_stops_with_the_reason(make_live_server: Any, tmp_path: Path) -> None:
    server: LiveServer = make_live_server()
    source = make_file(tmp_path / "f.bin", 2 * PART)
    portal = PortalTransport(portal_attempts=set(range(1, 1000)))
    config = EngineConfig(concurrency=2, backoff=Backoff(base=0.001, cap=0.01))
    result = await upload_file(source, server.base_url, tmp_path / "s", config=config, storage_transport=portal)
    assert not result.ok
    assert result.view.label == (
        "Action needed: the network is answering instead of the storage (captive portal or proxy?)"
    )
    # The run of portal answers stops the upload at the limit; a PUT already in flight on the other connection
    # may still meet the portal before the stop reaches it, but no new PUT starts after it.
    assert config.not_storage_limit <= portal.portal_answers < config.not_storage_limit + config.concurrency
    assert portal.sent == []
    manifests = DirectoryManifestStore(tmp_path / "s" / "manifests").load_all()
    assert len(manifests) == 1 and manifests[0].parts == {}, "nothing the portal said reached the manifest"
