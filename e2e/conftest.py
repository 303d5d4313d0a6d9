"""Fixtures for the browser tests: the real app (server + SeaweedFS behind a recording proxy) and Debian Chromium.

Chromium runs with a persistent profile (``launch_persistent_context``) so OPFS survives closing every page, which
is how "close every tab and come back" is tested.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

# The real SeaweedFS and live-server fixtures, shared with the Python test suite.
from tests.conftest import make_live_server, s3, seaweed  # noqa: F401
from tests.notify.conftest import push_service, smtp  # noqa: F401 - e2e/test_notify.py's receivers
from tests.support.files import random_file, sha256_file  # noqa: F401 - the e2e tests take them from here
from tests.support.host_issuer import issuer  # noqa: F401 - e2e/test_identity.py's JWKS and tokens
from tests.support.live_server import LiveServer
from tests.support.s3_proxy import RunningProxy, s3_proxy
from tests.support.seaweed import SeaweedService

from .ui import RECORD_LABELS

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"
RUNTIME_DIR = ROOT / "build" / "runtime"
ARTIFACTS = ROOT / "e2e" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]



@dataclass
class AppUnderTest:
    server: LiveServer
    proxy: RunningProxy
    s3: S3Client

    @property
    def url(self) -> str:
        return self.server.base_url + "/"

    @property
    def bucket(self) -> str:
        return self.server.settings.s3_bucket

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]

    def multipart_uploads(self) -> list[str]:
        return [u["UploadId"] for u in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]

    def only_object_sha256(self) -> str:
        keys = self.objects()
        assert len(keys) == 1, f"expected exactly one object, found {keys}"
        body = self.s3.get_object(Bucket=self.bucket, Key=keys[0])["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()


@pytest.fixture(scope="session")
def runtime_built() -> None:
    """Build (or confirm) the runtime the worker loads, so a test never runs a stale engine wheel. One build at a
    time: the e2e suite runs in several processes (pytest-xdist), each asking at its start."""
    if not (ROOT / "web" / "node_modules" / "pyodide").is_dir():
        pytest.fail("web/node_modules/pyodide is missing: run `make assets` (make test does it)")
    RUNTIME_DIR.parent.mkdir(parents=True, exist_ok=True)
    with (RUNTIME_DIR.parent / "runtime.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([sys.executable, str(ROOT / "web" / "build_runtime.py"), "--out", str(RUNTIME_DIR)], check=True)


@pytest.fixture
def make_app(
    runtime_built: None, seaweed: SeaweedService, make_live_server: Callable[..., LiveServer]
) -> Iterator[Callable[..., AppUnderTest]]:
    """``make_app(**settings)``: the app with custom server settings (e.g. ``presign_ttl_seconds=3``)."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> AppUnderTest:
            proxy = stack.enter_context(s3_proxy(seaweed.endpoint_url))
            server = make_live_server(
                web_dir=WEB_DIR, runtime_dir=RUNTIME_DIR, s3_public_endpoint_url=proxy.url, **overrides
            )
            return AppUnderTest(server, proxy, seaweed.client)

        yield make


@pytest.fixture
def app(make_app: Callable[..., AppUnderTest]) -> AppUnderTest:
    return make_app()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser_temp() -> Iterator[Path]:
    """Every test browser's TMPDIR, this run's own and removed when it ends: Chromium leaves temp files there
    (``FileSystemWritableStream-*`` up to 40 MiB each, from browsers a test kills), and 1.7 GB had piled up in /tmp."""
    path = Path(tempfile.mkdtemp(prefix="smartcat-e2e-browsers-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Browser:
    """Launches Chromium on one persistent profile; relaunching keeps OPFS, like a user reopening the browser.
    ``env`` adds to its environment (e.g. libfaketime's)."""

    playwright: Playwright
    profile: Path
    home: Path
    temp: Path
    env: Mapping[str, str] = field(default_factory=dict)
    context: BrowserContext | None = None

    def launch(self) -> BrowserContext:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
               "XDG_CACHE_HOME": str(self.home / ".cache"), "TMPDIR": str(self.temp), **self.env}
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env=env,
            viewport={"width": 1100, "height": 800},
        )
        self.context.add_init_script(RECORD_LABELS)
        for page in self.context.pages:  # the blank start tab: tests open exactly the tabs they mean
            page.close()
        return self.context

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None


@pytest.fixture
def browser(playwright: Playwright, browser_temp: Path, tmp_path: Path) -> Iterator[Browser]:
    b = Browser(playwright, tmp_path / "profile", tmp_path / "home", browser_temp)
    b.launch()
    try:
        yield b
    finally:
        b.close()


def open_app(context: BrowserContext, app: AppUnderTest, timeout_ms: float = 60_000) -> Page:
    """A new tab on the app, once its upload engine is ready; the worker's errors are echoed to the test log."""
    page = context.new_page()
    page.on("console", lambda m: print(f"[page {m.type}] {m.text}") if m.type in ("error", "warning") else None)
    page.goto(app.url)
    page.wait_for_selector('#engine[data-state="ready"]', timeout=timeout_ms)
    return page


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")




def record_metric(name: str, values: dict[str, Any]) -> None:
    """Figures the tests observe (boot time, MB/s, bytes re-sent), kept for the notes; never asserted on timing."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "metrics.json"
    with (ARTIFACTS / "metrics.lock").open("w") as lock:  # e2e runs in several processes: one writer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = values
        path.write_text(json.dumps(data, indent=2) + "\n")


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
