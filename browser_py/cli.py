"""Terminal uploader: the same engine and the same policy for many files as the browser, with httpx and local files.

    smartcat-upload FILE [FILE ...] --server http://127.0.0.1:8000

Run it again after an interruption and it resumes from the parts S3 already has (state in ``--state-dir``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from wire.view import UploadView

from .adapters.cpython import upload_files
from .engine.config import EngineConfig

DEFAULT_STATE_DIR = Path.home() / ".local" / "state" / "smartcat-upload"


def _progress(view: UploadView) -> None:
    line = f"{view.file_name[:24]:<24} {view.label[:40]:<40} {view.percent:5.1f}%  {view.speed_text}  {view.eta_text}"
    print(f"\r{line:<100}", end="", file=sys.stderr, flush=True)


def _notice(message: str) -> None:
    print(f"\n{message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartcat-upload", description="Resumable upload to a Smartcat uploader.")
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE")
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="presign service URL")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where resume state is kept")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight at once, per file")
    parser.add_argument("--parallel", type=int, default=2, help="files uploading at once (the rest wait)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.parallel < 1:
        parser.error("--concurrency and --parallel must be at least 1")
    for path in args.files:
        if not path.is_file():
            parser.error(f"{path} is not a readable file")
    results = asyncio.run(
        upload_files(
            args.files,
            args.server,
            args.state_dir,
            config=EngineConfig(concurrency=args.concurrency, parallel_uploads=args.parallel),
            on_view=None if args.quiet else _progress,
            on_notice=_notice,
        )
    )
    if not args.quiet:
        print(file=sys.stderr)
    for result in results:
        view = result.view
        if result.ok:
            verdict = "" if view.label == "Completed" else f": {view.label}"  # e.g. not checked for viruses
            print(f"uploaded {view.file_name} ({view.size} bytes) as session {view.session_id}{verdict}")
        elif view.phase == "blocked":
            print(f"{view.file_name} was uploaded but is blocked: {view.label}", file=sys.stderr)
        else:
            print(f"upload of {view.file_name} not finished: {view.label}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
