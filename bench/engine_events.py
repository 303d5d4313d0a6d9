"""The upload machine's CPU per part, in CPython: every event a part brings (hashed, sent) handled through
``Upload.handle`` at a 1 GiB and a 4 GiB plan of 8 MiB parts. The worker runs the same code in Pyodide (slower by a
factor, not in shape), so a cost that grows with the number of parts shows here first (issue 17).

    .venv/bin/python -m bench.engine_events
"""

from __future__ import annotations

import argparse
import random
import time

from browser_py.engine.commands import Command, HashPart
from browser_py.engine.config import EngineConfig
from browser_py.engine.events import Event, PartHashed, PartSent, SessionCreated, Start
from browser_py.engine.manifest import Manifest
from browser_py.engine.upload import Upload
from wire.plan import MiB

PART = 8 * MiB


def _feed(upload: Upload, event: Event) -> None:
    """Handle ``event`` and answer every part hash it asks for at once, as a fast adapter would."""
    todo: list[Command] = upload.handle(event)
    while todo:
        command = todo.pop()
        if isinstance(command, HashPart):
            todo.extend(upload.handle(PartHashed(event.now, command.number, f"c{command.number}")))


def ms_per_part(parts: int, gap: float) -> float:
    """CPU milliseconds per part for an upload of ``parts`` parts finishing ``gap`` seconds apart."""
    manifest = Manifest("L", "big.bin", parts * PART, "application/octet-stream", "fp", staged=True)
    upload = Upload(manifest, EngineConfig(leave_threshold=1e9), random.Random(1))
    _feed(upload, Start(0.0))
    _feed(upload, SessionCreated(0.5, "S", "uploads/u/S", PART, parts,
                                 {n: f"https://s3/{n}" for n in range(1, parts + 1)}, 1e9))
    started, now = time.process_time(), 1.0
    for number in range(1, parts + 1):
        now += gap
        _feed(upload, PartSent(now, number, f"e{number}"))
    return (time.process_time() - started) / parts * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_events", description=__doc__)
    parser.add_argument("--gap", type=float, default=0.08, help="seconds between parts (0.08: 100 MB/s)")
    args = parser.parse_args(argv)
    for parts in (128, 512):
        print(f"{parts} parts ({parts * PART / 2**30:g} GiB): {ms_per_part(parts, args.gap):.2f} ms CPU per part")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
