"""The example host (examples/host) under uvicorn for the embedding tests: its own login, the uploader at /uploader."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import uvicorn
from playwright.sync_api import BrowserContext, Page, expect

from examples.host.app import create_host, uploader_settings
from tests.conftest import database_overrides
from tests.support.live_server import settings_for
from tests.support.ports import free_port
from tests.support.s3_proxy import RunningProxy, s3_proxy
from tests.support.seaweed import SeaweedService

from .conftest import RUNTIME_DIR, WEB_DIR, wait_for

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

SECRET = "example-host-jwt-secret-long-enough-0123456789"


@dataclass
class Host:
    url: str
    bucket: str
    proxy: RunningProxy
    s3: S3Client

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]

    def object_sha256(self, key: str) -> str:
        return hashlib.sha256(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()).hexdigest()


@pytest.fixture(name="host")
def host_fixture(
    runtime_built: None, seaweed: SeaweedService, tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Host]:
    """The example host under uvicorn on a free port, its presigned URLs through a recording proxy."""
    data_dir = tmp_path_factory.mktemp("host")
    with s3_proxy(seaweed.endpoint_url) as proxy:
        settings = settings_for(
            seaweed, data_dir, port=free_port(), web_dir=WEB_DIR, runtime_dir=RUNTIME_DIR,
            s3_public_endpoint_url=proxy.url, require_checksums=True,
            **uploader_settings(SECRET), **database_overrides(request, data_dir),
        )
        server = uvicorn.Server(uvicorn.Config(create_host(settings), host="127.0.0.1", port=settings.port,
                                               log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
        thread = threading.Thread(target=server.run, name="example-host", daemon=True)
        thread.start()
        wait_for(lambda: server.started or not thread.is_alive(), 60, "the example host to start", interval=0.05)
        assert server.started, "the example host did not start"
        try:
            yield Host(f"http://127.0.0.1:{settings.port}", settings.s3_bucket, proxy, seaweed.client)
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def sign_in(context: BrowserContext, host: Host, user: str, password: str) -> Page:
    page = context.new_page()
    page.on("console", lambda m: print(f"[page {m.type}] {m.text}") if m.type in ("error", "warning") else None)
    page.goto(host.url + "/")  # the host sends a stranger to its login
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()
    return page
