"""The background path's throughput beside the engine's: the same file, the same Chromium, the same nginx in front
of the app and the store (part URLs on the app's origin), on this machine's loopback.

    .venv/bin/python -m bench.background --size 128MiB --rounds 3

"engine": the upload stays with the engine (the hand-off threshold is out of reach). "background": the engine hands
the rest to the browser's Background Fetch as soon as it has an estimate (threshold 0, workers without
``extendedLifetime``). Each is timed from the moment the engine has confirmed its first part (engine) or handed off
(background) until the object is in S3, over the bytes left then; the object's SHA-256 is checked every time. The
rounds alternate so load drifts hit both; the ratio background/engine is what to read (2 cores shared with others).
Writes ``bench/results/background.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from e2e.ui import pick
from tests.support.files import random_file, sha256_file
from tests.support.live_server import LiveServer, settings_for
from tests.support.proxied import ProxiedServer, start_proxied
from tests.support.seaweed import start_seaweed
from wire.plan import MiB

from .harness import Stack, browser, median
from .run import RESULTS, RUNTIME, _size, copy_runtime

WEB = Path(__file__).resolve().parent.parent / "web"
PART = 8 * MiB
#: Every page creates the worker without extendedLifetime, so any estimate over the threshold hands off.
WITHOUT_EXTENDED_LIFETIME = """
const NativeSharedWorker = window.SharedWorker;
window.SharedWorker = function SharedWorker(url, options) {
  return new NativeSharedWorker(url, { type: options.type, name: options.name });
};
"""


def _run(chromium: Any, stack: Stack, app: ProxiedServer, source: Path, digest: str, path: str) -> dict[str, float]:
    """One upload; the bytes left at the start of the measured stretch, over its seconds."""
    page = chromium.new_page()
    page.goto(app.origin + "/")
    page.wait_for_selector('#engine[data-state="ready"]', timeout=120_000)
    pick(page, source)
    card = page.locator(".upload", has_text=source.name)
    if path == "background":
        card.and_(page.locator('[data-phase="background"]')).wait_for(timeout=300_000)
    else:
        _wait(lambda: _parts(stack, app) or _stored(stack, app), 300)  # the clock starts at its first part
    start, left = time.monotonic(), source.stat().st_size - PART * _parts(stack, app)
    _wait(lambda: _stored(stack, app), 600)
    seconds = time.monotonic() - start
    stack.take_object(app.server, source.stat().st_size, digest)
    chromium.close_pages()
    return {"seconds": round(seconds, 2), "bytes": left, "mb_per_s": round(left / seconds / 1e6, 2)}


def _stored(stack: Stack, app: ProxiedServer) -> int:
    return int(stack.s3.list_objects_v2(Bucket=app.server.settings.s3_bucket).get("KeyCount", 0))


def _parts(stack: Stack, app: ProxiedServer) -> int:
    bucket = app.server.settings.s3_bucket
    uploads = stack.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sum(len(stack.s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
               for u in uploads)


def _wait(condition: Callable[[], Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the upload did not get there in time")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.background", description=__doc__)
    parser.add_argument("--size", default="128MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "background.json")
    args = parser.parse_args(argv)
    size = _size(args.size)
    runs: dict[str, list[dict[str, float]]] = {"engine": [], "background": []}
    with tempfile.TemporaryDirectory(prefix="smartcat-background-") as tmp_name:
        tmp = Path(tmp_name)
        runtime_dir = copy_runtime(tmp / "runtime", RUNTIME)
        seaweed = start_seaweed(tmp / "seaweedfs")
        made: list[LiveServer] = []

        def make(**overrides: Any) -> LiveServer:
            data_dir = tmp / f"server-{len(made)}"
            values = {"web_dir": WEB, "runtime_dir": runtime_dir, "part_size_bytes": PART, "adaptive_part_size": False}
            server = LiveServer(settings_for(seaweed, data_dir, **values, **overrides)).start()
            made.append(server)
            return server

        apps = {
            "engine": start_proxied(make, tmp / "nginx-engine", leave_threshold_seconds=1e9),
            "background": start_proxied(make, tmp / "nginx-background", leave_threshold_seconds=0.0),
        }
        stack = Stack(seaweed, made[0], WEB, runtime_dir, PART)
        try:
            with sync_playwright() as playwright, browser(playwright, tmp / "profile") as chromium:
                chromium.ctx.add_init_script(WITHOUT_EXTENDED_LIFETIME)
                for round_ in range(args.rounds):
                    for path, app in apps.items():
                        # A new file each time: the same one again would be "already uploaded".
                        source = random_file(tmp / f"background-{round_}-{path}.bin", size)
                        run = _run(chromium, stack, app, source, sha256_file(source), path)
                        source.unlink()
                        runs[path].append(run)
                        print(f"{path:10s} {run['bytes'] / MiB:6.0f} MiB in {run['seconds']:6.1f} s: "
                              f"{run['mb_per_s']:6.1f} MB/s", flush=True)
        finally:
            for app in apps.values():
                app.stop()
            seaweed.stop()
    engine = median([r["mb_per_s"] for r in runs["engine"]])
    background = median([r["mb_per_s"] for r in runs["background"]])
    results = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.background " + " ".join(argv or []),
        "size": size, "part_size": PART, "load": os.getloadavg()[0], "runs": runs,
        "median_mb_per_s": {"engine": engine, "background": background},
        "background_over_engine": round(background / engine, 2) if engine and background else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("median_mb_per_s", "background_over_engine")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
