"""Scan latency: from the moment ``complete`` answers (the object waits in quarantine) to the verdict, against the
real clamd (Debian's clamav-daemon, the EICAR test signature) and SeaweedFS, for each size. Baselines from the same
run: a plain S3 GET of the same object read to the end (what streaming it to clamd costs at least), and clamd
scanning the same bytes from a local file over the same client (what clamd itself costs).

    .venv/bin/python -m bench.scan --sizes 64MiB,1GiB --rounds 2

Writes ``bench/results/scan.json``; each figure is the median of the rounds. The machine is shared and loaded, so
compare the ratios (latency / GET time), not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from server.scan.clamd import Clamd
from tests.support.clamd import ClamdService
from tests.support.files import random_file
from tests.support.live_server import LiveServer, settings_for
from tests.support.seaweed import SeaweedService, start_seaweed
from tests.support.uploads import create_session, upload_all

from .harness import median
from .run import RESULTS, _size

PART = 64 << 20
#: clamd's stream limits here: above the largest size measured.
CLAMD_LIMIT = 1100 << 20


def _upload(client: httpx.Client, source: Path) -> tuple[str, str, float]:
    """Upload ``source`` through the API; (session id, object key, time ``complete`` answered)."""
    data = source.read_bytes()
    session = create_session(client, len(data), file_name=source.name, part_size=PART)
    parts = upload_all(client, session, data)
    del data
    done = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts}, timeout=600)
    answered = time.monotonic()
    assert done.status_code == 200, done.text
    return str(session["session_id"]), str(session["object_key"]), answered


def _verdict_after(client: httpx.Client, session_id: str, since: float) -> tuple[float, str]:
    """Seconds from ``since`` to the verdict (polled every 50 ms, as a page polling often would), and the verdict."""
    while True:
        state = client.get(f"/api/uploads/{session_id}").json()["scan_status"]
        if state != "pending":
            return time.monotonic() - since, str(state)
        time.sleep(0.05)


def _s3_get_seconds(seaweed: SeaweedService, bucket: str, key: str) -> float:
    started = time.monotonic()
    body = seaweed.client.get_object(Bucket=bucket, Key=key)["Body"]
    while body.read(1 << 20):
        pass
    return time.monotonic() - started


def _local_scan_seconds(clamd: Clamd, source: Path) -> float:
    started = time.monotonic()
    with source.open("rb") as body:
        verdict = clamd.scan(body)
    assert verdict.clean
    return time.monotonic() - started


def measure(server: LiveServer, seaweed: SeaweedService, clamd: Clamd, source: Path, rounds: int) -> dict[str, Any]:
    size = source.stat().st_size
    latency: list[float] = []
    get: list[float] = []
    local: list[float] = []
    with server.client(timeout=600) as client:
        for _ in range(rounds):
            session_id, key, answered = _upload(client, source)
            seconds, verdict = _verdict_after(client, session_id, answered)
            assert verdict == "clean", verdict
            latency.append(seconds)
            get.append(_s3_get_seconds(seaweed, server.settings.s3_bucket, key))
            local.append(_local_scan_seconds(clamd, source))
    lat, base, scan = median(latency), median(get), median(local)
    assert lat is not None and base is not None and scan is not None
    mb = size / 1e6
    return {
        "bytes": size,
        "complete_to_verdict_s": round(lat, 2),
        "s3_get_s": round(base, 2),
        "clamd_local_scan_s": round(scan, 2),
        "scan_mb_per_s": round(mb / lat, 1),
        "s3_get_mb_per_s": round(mb / base, 1),
        "latency_over_s3_get": round(lat / base, 1),
        "latency_over_local_scan": round(lat / scan, 2),
        "runs": {"complete_to_verdict_s": latency, "s3_get_s": get, "clamd_local_scan_s": local},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__)
    parser.add_argument("--sizes", default="64MiB,1GiB", help="comma-separated object sizes (under 1100 MiB)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "scan.json")
    args = parser.parse_args(argv)
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.scan " + " ".join(sys.argv[1:] if argv is None else argv),
        "load_before": os.getloadavg()[0],
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="smartcat-scan-") as tmp_name:
        tmp = Path(tmp_name)
        seaweed = start_seaweed(tmp / "seaweedfs")
        # MaxScanSize counts what clamd finds embedded in the stream too: random bytes that look like an embedded
        # file make a 1 GiB stream more than 1 GiB of scanning, so it gets room (as production's must, README).
        clamd = ClamdService(tmp / "clamd", stream_max_bytes=CLAMD_LIMIT, file_max_bytes=4000 << 20)
        clamd.prepare()
        clamd.start()
        server = LiveServer(
            settings_for(
                seaweed, tmp / "server", scan="clamd", clamd_port=clamd.port, scan_max_bytes=CLAMD_LIMIT,
                outbox_poll_seconds=0.2,
            )
        ).start()
        try:
            client = Clamd("127.0.0.1", clamd.port, 600.0)
            for size in sizes:
                source = random_file(tmp / f"scan-{size >> 20}mib.bin", size)
                figures = measure(server, seaweed, client, source, args.rounds)
                results["sizes"][f"{size >> 20}MiB"] = figures
                print(json.dumps({f"{size >> 20}MiB": {k: v for k, v in figures.items() if k != "runs"}}))
                source.unlink()
        finally:
            server.stop()
            clamd.stop()
            seaweed.stop()
    results["load_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
