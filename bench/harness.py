"""One upload by one contender in Chromium, measured the same way for all.

Timings come from Resource Timing in the context that does the uploading (the app's SharedWorker for our engine,
through its diagnostics channel; the page for the peers), converted to wall-clock milliseconds with each context's
``timeOrigin``: the pick (a capturing ``change`` listener in the page), the first part PUT's start, and the end of the
last request of the upload (the last part or the complete call). CPU and renderer memory come from /proc.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from playwright.sync_api import BrowserContext, Page, Playwright

from e2e.ui import PICKER, SHADOW
from e2e.ui import notices as notices_of
from tests.support.live_server import LiveServer, settings_for
from tests.support.seaweed import SeaweedService
from tests.support.worker_diagnostics import worker_report

from .procs import ProcessSampler, find_browser, wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The flags the e2e tests use (platform-facts: no sandbox in containers, no background traffic).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENGINE = "engine"
PEERS = ("raw", "raw-sha256", "uppy5", "uppy6")

# In every page: when the file was picked (in the page, or in <smartcat-uploader>'s shadow root, which a "change"
# does not leave), and every upload view the element's client announces (our engine's phases).
INIT_SCRIPT = """
performance.setResourceTimingBufferSize(100000);  // thousands of parts: keep every entry, not the first 250
window.__done = null;
window.__pick = null;
window.__views = [];
const onPick = (event) => {
  if (event.target && event.target.type === "file" && window.__pick === null) window.__pick = performance.now();
};
document.addEventListener("change", onPick, true);
customElements.whenDefined("smartcat-uploader").then(() => {
  const element = document.querySelector("smartcat-uploader");
  if (!element) return;
  element.shadowRoot.addEventListener("change", onPick, true);
  // A worker that outlived the last page (extendedLifetime) says hello with the earlier runs' finished cards: an
  // upload whose first view is already finished is one of those, not this run's.
  const earlier = new Set();
  const mine = new Set();
  element.uploader.addEventListener("change", (event) => {
    const v = event.detail;
    if (!mine.has(v.local_id)) {
      if (earlier.has(v.local_id) || ["completed", "failed", "cancelled", "blocked"].includes(v.phase)) {
        earlier.add(v.local_id);
        return;
      }
      mine.add(v.local_id);
    }
    const t = performance.now();
    window.__views.push({ t, phase: v.phase, confirmed: v.bytes_confirmed, saved: v.saved });
    if (v.phase === "completed" && window.__done === null) window.__done = t;
  });
});
"""

PAGE_RESOURCES_JS = """() => ({
  time_origin: performance.timeOrigin,
  pick: window.__pick,
  done: window.__bench ? window.__bench.doneAt : window.__done,
  views: window.__views,
  bench: window.__bench || null,
  resources: performance.getEntriesByType("resource").map((e) => ({
    name: e.name, type: e.initiatorType, start: e.startTime, end: e.responseEnd })),
})"""




PAGE_TRANSFER_JS = """() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
  .reduce((sum, e) => sum + (e.transferSize || 0), 0)"""


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass
class Upload:
    """One measured upload. Times in ms; throughput in MB/s (10^6 bytes per second)."""

    contender: str
    mode: str  # "cold": picked as soon as the page could take it; "warm": the page was open 10 s before the pick
    size: int
    part_size: int
    concurrency: int
    pick_to_first_byte_ms: float
    transfer_ms: float  # first part PUT starts -> last request of the upload ends
    pick_to_done_ms: float
    safe_to_leave_ms: float  # engine: the file is staged in the browser; peers: the upload is done
    stage_ms: float | None
    cpu_s: float  # every Chromium process, pick -> done
    transfer_cpu_s: float  # the same, first part PUT -> done (the engine's staging copy left out)
    renderer_peak_mb: float  # the largest renderer process (the page and its worker)
    renderer_processes: int
    heap_mb: float | None  # Pyodide's wasm memory (engine only)
    worker_ready_ms: float | None  # engine: worker start -> hub ready
    worker_mode: str | None
    phases_ms: dict[str, float] = field(default_factory=dict)  # engine: first view of each phase, after the pick
    mean_in_flight: float = 0.0  # summed part PUT durations / transfer time: how full the PUT slots were kept

    @property
    def throughput_mbps(self) -> float:
        return self.size / 1e6 / (self.transfer_ms / 1000)

    @property
    def cpu_s_per_gib(self) -> float:
        return self.cpu_s / (self.size / 2**30)

    @property
    def transfer_cpu_s_per_gib(self) -> float:
        return self.transfer_cpu_s / (self.size / 2**30)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["throughput_mbps"] = round(self.throughput_mbps, 1)
        data["cpu_s_per_gib"] = round(self.cpu_s_per_gib, 2)
        data["transfer_cpu_s_per_gib"] = round(self.transfer_cpu_s_per_gib, 2)
        return data


def _is_upload_request(name: str) -> bool:
    """A part PUT, our service's complete call, or S3's own CompleteMultipartUpload (Uppy 6 calls S3 directly)."""
    path, _, query = name.partition("?")
    return "partNumber=" in query or path.endswith("/complete") or "uploadId=" in query


def _timeline(pick: float, entries: list[tuple[str, float, float]]) -> tuple[float, float, float]:
    """(first part PUT start, end of the last upload request, summed PUT time), wall-clock ms, from
    (name, start, end) entries."""
    puts = [(start, end) for name, start, end in entries if "partNumber=" in name and start >= pick - 1]
    ends = [end for name, start, end in entries if _is_upload_request(name) and start >= pick - 1]
    if not puts or not ends:
        raise AssertionError(f"no part PUTs recorded after the pick ({len(entries)} resources)")
    return min(s for s, _ in puts), max(ends), sum(e - s for s, e in puts)


@dataclass
class Stack:
    """Storage and servers: one SeaweedFS, our server (the app and the bench pages) on a bucket of its own."""

    seaweed: SeaweedService
    server: LiveServer
    web_dir: Path
    runtime_dir: Path
    part_size: int
    extra: list[LiveServer] = field(default_factory=list)

    @property
    def s3(self) -> S3Client:
        return self.seaweed.client

    def server_for(self, data_dir: Path, **overrides: Any) -> LiveServer:
        """Another server on the same SeaweedFS (own bucket and port), e.g. with another part size or a proxy."""
        values: dict[str, Any] = {"web_dir": self.web_dir, "runtime_dir": self.runtime_dir,
                                  "part_size_bytes": self.part_size, "adaptive_part_size": False}
        values.update(overrides)
        server = LiveServer(settings_for(self.seaweed, data_dir, **values)).start()
        self.extra.append(server)
        return server

    def stop(self) -> None:
        for server in [*self.extra, self.server]:
            server.stop()

    def discard(self, server: LiveServer) -> None:
        """Empty the server's bucket after a failed upload: every object and every unfinished multipart upload."""
        bucket = server.settings.s3_bucket
        for obj in self.s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            self.s3.delete_object(Bucket=bucket, Key=obj["Key"])
        for upload in self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])

    def take_object(self, server: LiveServer, size: int, expect_sha256: str | None = None) -> None:
        """Check the one object the upload made (its size, and its bytes when asked), then delete it."""
        bucket = server.settings.s3_bucket
        objects = self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        assert len(objects) == 1, f"expected one object in {bucket}, found {[o['Key'] for o in objects]}"
        key = objects[0]["Key"]
        assert objects[0]["Size"] == size, f"{key} has {objects[0]['Size']} bytes, expected {size}"
        if expect_sha256 is not None:
            digest = hashlib.sha256()
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1 << 22), b""):
                digest.update(chunk)
            assert digest.hexdigest() == expect_sha256, f"{key}: the bytes on S3 differ from the source"
        self.discard(server)


@dataclass
class Chromium:
    """Headless Chromium on a persistent profile (OPFS, HTTP cache and the worker's code cache survive pages)."""

    playwright: Playwright
    profile: Path
    context: BrowserContext | None = None
    sampler: ProcessSampler | None = None
    extra_args: tuple[str, ...] = ()  # e.g. --js-flags=... for an experiment (bench.threads --chromium-arg)

    def launch(self) -> Chromium:
        home = self.profile.parent / (self.profile.name + "-home")
        home.mkdir(parents=True, exist_ok=True)
        env: dict[str, str | float | bool] = {**os.environ, "HOME": str(home),
                                              "XDG_CONFIG_HOME": str(home / ".config"),
                                              "XDG_CACHE_HOME": str(home / ".cache")}
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *self.extra_args],
            env=env,
            viewport={"width": 1100, "height": 800},
        )
        self.context.add_init_script(INIT_SCRIPT)
        for page in self.context.pages:
            page.close()
        pid = wait_until(lambda: find_browser(str(self.profile)), 10, "the Chromium process")
        self.sampler = ProcessSampler(pid).start()
        return self

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.context is not None:
            self.context.close()
        self.context = self.sampler = None

    @property
    def ctx(self) -> BrowserContext:
        assert self.context is not None
        return self.context

    @property
    def procs(self) -> ProcessSampler:
        assert self.sampler is not None
        return self.sampler

    def restart(self) -> None:
        """A new browser on the same profile (HTTP cache, code cache and OPFS kept) with no worker running, as after
        the user quit the browser: closing every tab is not enough, the app's SharedWorker outlives its last page by
        minutes (``extendedLifetime``) and the next page would find it warm, after an upload."""
        self.close()
        self.launch()

    def close_pages(self) -> None:
        """Every tab goes (the app's SharedWorker may outlive them: ``restart`` for none running)."""
        for page in list(self.ctx.pages):
            page.close()
        time.sleep(0.3)  # let the worker's process wind down before the next measurement

    def new_page(self) -> Page:
        page = self.ctx.new_page()
        page.on("pageerror", lambda e: print(f"    [page error] {e}"))
        page.on("response", lambda r: print(f"    [HTTP {r.status}] {r.request.method} {r.url[:160]}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        return page


@contextmanager
def browser(playwright: Playwright, profile: Path, extra_args: tuple[str, ...] = ()) -> Iterator[Chromium]:
    chromium = Chromium(playwright, profile, extra_args=extra_args).launch()
    try:
        yield chromium
    finally:
        chromium.close()


def bench_url(server: LiveServer, contender: str, part_size: int, concurrency: int, s3: dict[str, str] | None) -> str:
    query = {"c": contender, "part": str(part_size), "conc": str(concurrency)}
    if s3 is not None:
        query["s3"] = json.dumps(s3)
    return f"{server.base_url}/static/bench/bench.html?{urlencode(query)}"


def s3_for_uppy6(stack: Stack, server: LiveServer, endpoint: str | None = None) -> dict[str, str]:
    """What Uppy 6 needs to sign for the bucket itself (the bench's SeaweedFS test identity)."""
    return {
        "endpoint": endpoint or stack.seaweed.endpoint_url,
        "bucket": server.settings.s3_bucket,
        "region": stack.seaweed.region,
        "accessKeyId": stack.seaweed.access_key_id,
        "secretAccessKey": stack.seaweed.secret_access_key,
    }


def open_contender(
    chromium: Chromium, stack: Stack, server: LiveServer, contender: str, concurrency: int,
    s3_endpoint: str | None = None,
) -> Page:
    """A new tab on the contender's page, ready to take a pick (scripts loaded; the engine may still be booting)."""
    page = chromium.new_page()
    if contender == ENGINE:
        page.goto(server.base_url + "/", wait_until="domcontentloaded")
    else:
        s3 = s3_for_uppy6(stack, server, s3_endpoint) if contender == "uppy6" else None
        page.goto(bench_url(server, contender, stack.part_size, concurrency, s3), wait_until="domcontentloaded")
        # Polled from here, like wait_done: the page's CSP refuses wait_for_function's predicate once it polls.
        wait_until(lambda: page.evaluate("!!(window.__bench && (window.__bench.ready || window.__bench.error))"),
                   30, f"the {contender} page to be ready", interval=0.05)
        error = page.evaluate("window.__bench.error")
        assert not error, f"{contender} page failed: {error}"
    return page


def pick(page: Page, contender: str, source: Path) -> None:
    page.set_input_files(PICKER if contender == ENGINE else "#file", str(source))


DONE_JS = {
    # A notice with no upload card means the engine refused the pick ("already uploaded", no space...).
    ENGINE: "window.__views.some((v) => ['completed', 'failed', 'cancelled'].includes(v.phase))"
    f" || (window.__views.length === 0 && {SHADOW}?.querySelector('.notices li') != null)",
    "peer": "window.__bench.doneAt !== null || window.__bench.error !== null",
}


def wait_done(page: Page, contender: str, timeout_s: float) -> None:
    # Polled from here: a page's Content-Security-Policy (no 'unsafe-eval') refuses wait_for_function's predicate.
    done = DONE_JS[ENGINE if contender == ENGINE else "peer"]
    wait_until(lambda: page.evaluate(done), timeout_s, f"{contender} to finish", interval=0.1)
    if contender == ENGINE:
        phases = [v["phase"] for v in page.evaluate("window.__views")]
        notices = notices_of(page).locator("li").all_text_contents()
        assert "completed" in phases, f"the engine did not complete: {phases[-5:]}, notices {notices}"
    else:
        error = page.evaluate("window.__bench.error")
        assert not error, f"{contender} failed: {error}"


def measure_upload(
    chromium: Chromium,
    stack: Stack,
    server: LiveServer,
    contender: str,
    source: Path,
    *,
    concurrency: int,
    warm_s: float,
    timeout_s: float = 900,
    on_pick: Callable[[], None] | None = None,
) -> Upload:
    """Open the contender's page, wait ``warm_s`` (0: pick as soon as it can take one), pick, wait until done.
    ``on_pick`` runs just before the pick (another reading of the processes, for ``bench.threads``)."""
    size = source.stat().st_size
    # A new anonymous user per upload: the app (rightly) refuses a file its user has already uploaded.
    chromium.ctx.clear_cookies()
    page = open_contender(chromium, stack, server, contender, concurrency)
    if warm_s:
        time.sleep(warm_s)
    if contender == ENGINE:
        worker_report(page, wait_ready=False, buffer=100_000)  # keep every PUT's timing, past the default 250
    procs = chromium.procs
    procs.reset_peak()
    cpu0 = procs.cpu()
    if on_pick is not None:
        on_pick()
    pick(page, contender, source)
    wait_done(page, contender, timeout_s)
    cpu = procs.cpu() - cpu0
    peak_rss, renderers = procs.peak()
    seen = page.evaluate(PAGE_RESOURCES_JS)
    origin = float(seen["time_origin"])
    pick_at = origin + float(seen["pick"])
    heap_mb = ready = mode = None
    stage_ms: float | None = None
    phases: dict[str, float] = {}
    if contender == ENGINE:
        report = worker_report(page, clear=True)
        worker_origin = float(report["time_origin"])
        entries = [(r["name"], worker_origin + r["start"], worker_origin + r["end"]) for r in report["resources"]]
        heap_mb = report["heap_bytes"] / 1e6
        ready, mode = report["boot"]["ready_ms"], report["boot"]["mode"]
        # "saved": the browser holds the whole file, so every tab may close (older engines: past "saving").
        has_flag = any("saved" in v and v["saved"] is not None for v in seen["views"])
        staged = [v["t"] for v in seen["views"]
                  if (v.get("saved") if has_flag else v["phase"] not in ("new", "saving", "queued"))]
        stage_ms = origin + min(staged) - pick_at if staged else None
        for view in seen["views"]:
            phases.setdefault(view["phase"], round(origin + view["t"] - pick_at, 1))
    else:
        entries = [(r["name"], origin + r["start"], origin + r["end"]) for r in seen["resources"]]
    first, _last, busy = _timeline(pick_at, entries)
    # Done: when the contender's own code learned it (the engine's "completed" view, the peer's promise).
    done = origin + float(seen["done"])
    page.close()
    pick_to_done = done - pick_at
    return Upload(
        contender=contender,
        mode="warm" if warm_s else "cold",
        size=size,
        part_size=stack.part_size,
        concurrency=concurrency,
        pick_to_first_byte_ms=round(first - pick_at, 1),
        transfer_ms=round(done - first, 1),
        pick_to_done_ms=round(pick_to_done, 1),
        safe_to_leave_ms=round(stage_ms if stage_ms is not None else pick_to_done, 1),
        stage_ms=round(stage_ms, 1) if stage_ms is not None else None,
        cpu_s=round(cpu, 2),
        transfer_cpu_s=round(procs.cpu_at(done / 1000) - procs.cpu_at(first / 1000), 2),
        renderer_peak_mb=round(peak_rss / 1e6, 1),
        renderer_processes=renderers,
        heap_mb=round(heap_mb, 1) if heap_mb is not None else None,
        worker_ready_ms=ready,
        worker_mode=mode,
        phases_ms=phases,
        mean_in_flight=round(busy / (done - first), 2),
    )


def engine_ready(chromium: Chromium, server: LiveServer, timeout_s: float = 60) -> dict[str, Any]:
    """Open the app with no worker running; how long the worker took to be ready, and from the page's start."""
    page = chromium.new_page()
    page.goto(server.base_url + "/", wait_until="domcontentloaded", timeout=timeout_s * 1000)
    report = worker_report(page, timeout_s=timeout_s)
    page_origin = float(page.evaluate("performance.timeOrigin"))
    page_bytes = int(page.evaluate(PAGE_TRANSFER_JS))
    boot = report["boot"]
    page.close()
    if boot["ready_ms"] is None:
        raise AssertionError(f"the worker did not start: {boot.get('error')}")
    worker_bytes = {r["name"].split("?")[0].rsplit("/", 1)[-1]: int(r.get("transfer") or 0)
                    for r in report["resources"]}
    return {
        # Bytes over the wire (Resource Timing transferSize: headers and encoded body, 0 from the cache) by the
        # page (document, scripts, styles) and the worker (manifest, Pyodide, stdlib, snapshot) until ready.
        "wire_bytes": page_bytes + sum(worker_bytes.values()),
        "wire_bytes_by_file": {k: v for k, v in sorted(worker_bytes.items(), key=lambda kv: -kv[1]) if v},
        "mode": boot["mode"],
        "fallback": boot.get("fallback"),
        "load_average": round(os.getloadavg()[0], 1),
        "python_ms": boot["python_ms"],
        "worker_ready_ms": boot["ready_ms"],
        "page_open_to_ready_ms": round(float(report["time_origin"]) + boot["ready_ms"] - page_origin, 1),
        "phases": boot["phases"],
        "heap_mb": round(report["heap_bytes"] / 1e6, 1),
    }


def interleaved(contenders: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """Round by round, each round starting one contender later, so no one always runs first or last."""
    for r in range(rounds):
        for i in range(len(contenders)):
            yield r, contenders[(i + r) % len(contenders)]


Progress = Callable[[str], None]
