"""Terminal uploader: the same engine as the browser, with httpx and a local file.

    smartcat-upload FILE --server http://127.0.0.1:8000

Run it again after an interruption and it resumes from the parts S3 already has (state in ``--state-dir``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from .adapters.cpython import upload_file
from .engine.upload import EngineConfig

DEFAULT_STATE_DIR = Path.home() / ".local" / "state" / "smartcat-upload"


def _progress(view: dict[str, Any]) -> None:
    speed = f"  {view['speed_bps'] / 1e6:.1f} MB/s" if view.get("speed_bps") else ""
    eta = f"  ETA {view['eta_seconds']:.0f} s" if view.get("eta_seconds") is not None else ""
    print(f"\r{view['label']:<40} {view['percent']:5.1f}%{speed}{eta}   ", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartcat-upload", description="Resumable upload to a Smartcat uploader.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="presign service URL")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where resume state is kept")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight at once")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not args.file.is_file():
        parser.error(f"{args.file} is not a readable file")
    result = asyncio.run(
        upload_file(
            args.file,
            args.server,
            args.state_dir,
            config=EngineConfig(concurrency=args.concurrency),
            on_view=None if args.quiet else _progress,
        )
    )
    if not args.quiet:
        print(file=sys.stderr)
    view = result.view
    if result.ok:
        print(f"uploaded {view['file_name']} ({view['size']} bytes) as session {view['session_id']}")
        return 0
    print(f"upload not finished: {view['label']}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
