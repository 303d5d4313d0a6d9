"""Pick → saved: how long a picked file is at risk (a crash before the browser's copy completes means choosing the
file again). Measured in the app in Chromium, cold (picked as the page opens, the engine still starting) and warm
(the page open 10 s), for each size, while the upload runs as usual; the object's SHA-256 is checked.

    .venv/bin/python -m bench.saved --sizes 160MiB,1GiB --rounds 3

Writes ``bench/results/saved.json``; "saved" is the first card with ``saved`` true (the copy is complete on disk).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from tests.support.files import random_file
from tests.support.live_server import LiveServer, settings_for
from tests.support.seaweed import start_seaweed
from wire.plan import MiB

from .harness import Stack, browser
from .run import RESULTS, RUNTIME, _size, copy_runtime
from .scenarios import saved

WEB = Path(__file__).resolve().parent.parent / "web"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.saved", description=__doc__)
    parser.add_argument("--sizes", default="160MiB,1GiB", help="comma-separated source sizes")
    parser.add_argument("--rounds", type=int, default=3, help="cold and warm runs of each size")
    parser.add_argument("--out", type=Path, default=RESULTS / "saved.json")
    args = parser.parse_args(argv)
    sizes = [_size(s.strip()) for s in args.sizes.split(",") if s.strip()]
    results: dict[str, Any] = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "command": "python -m bench.saved " + " ".join(argv or []), "sizes": {},
                               "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="smartcat-saved-") as tmp_name:
        tmp = Path(tmp_name)
        runtime_dir = copy_runtime(tmp / "runtime", RUNTIME)
        seaweed = start_seaweed(tmp / "seaweedfs")
        server = LiveServer(settings_for(seaweed, tmp / "server", web_dir=WEB, runtime_dir=runtime_dir,
                                         part_size_bytes=8 * MiB, adaptive_part_size=False)).start()
        stack = Stack(seaweed, server, WEB, runtime_dir, 8 * MiB)
        try:
            with sync_playwright() as playwright, browser(playwright, tmp / "profile") as chromium:
                for size in sizes:
                    source = random_file(tmp / f"saved-{size >> 20}mib.bin", size)
                    results["sizes"][f"{size >> 20}MiB"] = saved(
                        chromium, stack, server, source, rounds=args.rounds, concurrency=4,
                        say=lambda text: print(text, flush=True))
                    source.unlink()
        finally:
            stack.stop()
            seaweed.stop()
    results["load_after"] = os.getloadavg()[0]  # 2 shared cores: the copy competes with everything else running
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["sizes"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
