"""Where pick → saved spends its time: the browser's copy of a picked file into OPFS, by write strategy, beside the
disk's own speed. In a module SharedWorker (where the engine copies, browser_py/adapters/opfs.py ``stage()``):
``createWritable`` with 8/32/64/128 MiB slice writes, one write of the whole File, ``file.stream().pipeTo()``, and
whether a dedicated Worker could be spawned there; in a dedicated Worker from the page, ``createSyncAccessHandle``
(32 MiB writes, then ``flush()``) for reference; and ``dd`` of the same file, with and without ``fdatasync``.

    .venv/bin/python -m bench.opfs_copy --size 1GiB --rounds 2

Writes ``bench/results/opfs-copy.json``. Rounds interleave the strategies, so every one sees the same load.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from tests.support.files import random_file

from .harness import browser, median
from .procs import wait_until
from .run import RESULTS, _size

PAGES = Path(__file__).resolve().parent / "web"
SHARED = ["slices8", "slices32", "slices64", "slices128", "whole", "pipe", "nested"]


class _Pages(SimpleHTTPRequestHandler):
    """The bench's static pages, with the module MIME type workers need."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript"}
        super().__init__(*args, **kwargs)  # handles the request: the map must be set before

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def serve_pages() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Pages, directory=str(PAGES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dd_mbps(source: Path, target: Path, sync: bool) -> float:
    """MB/s of ``dd`` copying ``source`` in 32 MiB blocks (``conv=fdatasync``: until it is on the disk)."""
    command = ["dd", f"if={source}", f"of={target}", "bs=32M", "status=none"] + (["conv=fdatasync"] if sync else [])
    started = datetime.now(UTC)
    subprocess.run(command, check=True)
    seconds = (datetime.now(UTC) - started).total_seconds()
    target.unlink()
    return source.stat().st_size / 1e6 / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.opfs_copy", description=__doc__)
    parser.add_argument("--size", type=_size, default=1 << 30, help="source file size (default 1GiB)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "opfs-copy.json")
    args = parser.parse_args(argv)
    runs: dict[str, list[float]] = {}
    notes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="smartcat-opfs-copy-") as tmp_name:
        tmp = Path(tmp_name)
        source = random_file(tmp / "source.bin", args.size)
        with sync_playwright() as playwright, browser(playwright, tmp / "profile") as chromium, serve_pages() as base:
            page = chromium.new_page()
            page.goto(f"{base}/opfs-copy.html?variants={','.join(['dedicated', *SHARED])}")
            for round_ in range(args.rounds):
                for sync in (False, True):
                    runs.setdefault(f"dd{'-fdatasync' if sync else ''}", []).append(
                        dd_mbps(source, tmp / "dd.bin", sync))
                page.evaluate("() => { document.getElementById('file').value = ''; }")
                page.set_input_files("#file", str(source))
                wait_until(lambda: page.evaluate("window.__copy.done || window.__copy.error !== null"), 1800,
                           "the copies to end", interval=0.5)
                copy = page.evaluate("window.__copy")
                assert copy["error"] is None, copy["error"]
                for result in copy["runs"]:
                    key = f"{result['where']}-{result['variant']}"
                    if "ms" in result and result["complete"]:
                        runs.setdefault(key, []).append(args.size / 1e3 / result["ms"])
                        notes.setdefault(f"{key} close_ms", []).append(round(result["close_ms"], 1))
                    else:
                        notes[key] = {k: v for k, v in result.items() if k not in ("where", "variant")}
                print(f"round {round_ + 1}: load {os.getloadavg()[0]:.1f}", flush=True)
    results = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.opfs_copy " + " ".join(argv or []),
        "size": args.size,
        "mbps": {key: {"median": round(median(values) or 0, 1), "runs": [round(v, 1) for v in values]}
                 for key, values in runs.items()},
        "notes": notes,
        "load_after": os.getloadavg()[0],  # 2 shared cores: compare strategies within one run, not across runs
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["mbps"], indent=2), json.dumps(notes, indent=2), sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
