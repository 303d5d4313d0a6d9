"""``python -m load.cpu``: the server's CPU per request under ``make load``'s churn model, for one or more revisions
side by side in the same run (the machine is shared: only a ratio measured at the same time means something).

Each revision's ``server/`` and ``wire/`` are exported (``git archive``) and put first on ``PYTHONPATH`` of one
``python -m server`` on PostgreSQL, a private Redis and SeaweedFS (the load scenario's stack, one instance, no
nginx); Locust drives ``--users`` users for ``--seconds``; the server process's CPU time (user + system, from
``/proc``) over that window, less what it spent at the same rate idle just before (its background loops), divided
by the requests it answered is the figure. Rounds alternate the revisions
(A B A B …) so a change in the machine's load falls on both. ``--profile DIR``: py-spy samples the server the whole
window (``DIR/<rev>-<round>.txt``, collapsed stacks) and the functions holding most of its CPU are printed.

Example: ``python -m load.cpu --rev HEAD~1 --rev HEAD --users 30 --seconds 60 --rounds 2``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from load.run import USER_CLASSES
from tests.support.instances import ServerInstances
from tests.support.postgres import PostgresCluster
from tests.support.redis import RedisServer
from tests.support.seaweed import SeaweedService, start_seaweed

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "load" / "locustfile.py"
#: The Locust row that is not a request to the server (part PUTs go to the store).
STORE_ROW = "PUT part (store)"
WORKING_TREE = "."
#: Seconds the idle server is watched before the load starts: its own CPU rate then is taken off the figure.
IDLE_SECONDS = 10.0


@dataclass
class Measure:
    rev: str
    requests: int
    errors: int
    cpu_seconds: float
    seconds: float
    load1: float

    @property
    def ms_per_request(self) -> float:
        return 1000.0 * self.cpu_seconds / max(self.requests, 1)


def export(rev: str, into: Path) -> Path:
    """The revision's ``server`` and ``wire`` packages in a directory of their own (the working tree, or a directory
    holding both packages: itself)."""
    if rev == WORKING_TREE:
        return ROOT
    if Path(rev).is_dir():
        return Path(rev).resolve()
    target = into / rev.replace("/", "_").replace("~", "-")
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "server", "wire"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _server_requests(prefix: Path) -> tuple[int, int]:
    requests = errors = 0
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] in (STORE_ROW, "Aggregated") or not row["Request Count"]:
                continue
            requests += int(row["Request Count"])
            errors += int(row["Failure Count"])
    return requests, errors


def measure(
    rev: str,
    source: Path,
    label: str,
    args: argparse.Namespace,
    postgres: PostgresCluster,
    seaweed: SeaweedService,
    redis_url: str,
    work: Path,
) -> Measure:
    """One server of ``rev`` under ``args.users`` users for ``args.seconds``: its CPU per answered request."""
    environment = {"PYTHONPATH": str(source)}
    with ServerInstances(work / label, 1, postgres, seaweed, redis_url, environment) as stack:
        pid = stack.pids[0]
        prefix = work / label
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), USER_CLASSES["churn"], "--headless",
            "--host", stack.instance_url(0), "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
            "--csv", str(prefix), "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING",
        ]  # fmt: skip
        spy: subprocess.Popen[bytes] | None = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--rate", "200", "--gil",
                 "--format", "raw", "--nonblocking", "--output", str(args.profile / f"{label}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        idle_started, idle_before = time.monotonic(), _cpu_seconds(pid)
        time.sleep(IDLE_SECONDS)  # a measuring window: what the server spends with no request (background loops)
        idle_rate = (_cpu_seconds(pid) - idle_before) / (time.monotonic() - idle_started)
        started, cpu_before = time.monotonic(), _cpu_seconds(pid)
        env = {**os.environ, "LOAD_THINK_SECONDS": str(args.think)}
        subprocess.run(command, env=env, cwd=work, capture_output=True, check=False)
        cpu, seconds = _cpu_seconds(pid) - cpu_before, time.monotonic() - started
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and ends
            spy.wait(120)
        requests, errors = _server_requests(prefix)
        return Measure(rev, requests, errors, cpu - idle_rate * seconds, seconds, os.getloadavg()[0])


def hot_functions(collapsed: Path, top: int = 20) -> list[tuple[str, float, str]]:
    """From py-spy's collapsed stacks (sampled while holding the GIL, so CPU, not waiting): the ``top`` functions
    by their own samples (``self``), then the server's own functions by inclusive samples (``server``), as
    (kind, % of all samples, "function file")."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_name(frame) for frame in stack.split(";")]
        count = int(count_text)
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    share = 100.0 / max(total, 1)
    mine = [(name, n) for name, n in inclusive.most_common() if " server/" in name and "__main__" not in name]
    return [("self", n * share, name) for name, n in own.most_common(top)] + [
        ("server", n * share, name) for name, n in mine[:top]
    ]


def _frame_name(frame: str) -> str:
    """``"func (path/to/file.py:12)"`` -> ``"func path/to/file.py"`` (the line left out, so a function is one row)."""
    function, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].removesuffix(")")
    return f"{function} {path.split('site-packages/')[-1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rev", action="append", help="git revision or directory to measure (repeatable; '.': the working tree)"
    )
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--think", type=float, default=1.0, help="seconds each user waits between steps")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy's collapsed stacks go to this directory")
    args = parser.parse_args(argv)
    revs: list[str] = args.rev or [WORKING_TREE]
    results: list[Measure] = []
    with (
        tempfile.TemporaryDirectory(prefix="smartcat-cpu-") as temp,
        PostgresCluster() as postgres,
        RedisServer() as redis,
    ):
        work = Path(temp)
        sources = {rev: export(rev, work / "src") for rev in revs}
        seaweed = start_seaweed(work / "seaweedfs")
        try:
            for round_number in range(1, args.rounds + 1):
                for index, rev in enumerate(revs):
                    label = f"r{index}-{round_number}"
                    result = measure(rev, sources[rev], label, args, postgres, seaweed, redis.url, work)
                    results.append(result)
                    print(
                        f"[cpu] {rev:>12} round {round_number}: {result.ms_per_request:6.2f} ms CPU/request "
                        f"({result.requests} requests, {result.errors} errors, {result.cpu_seconds:.1f} s CPU "
                        f"in {result.seconds:.0f} s, load {result.load1:.1f})",
                        flush=True,
                    )
                    if args.profile is not None and (args.profile / f"{label}.txt").exists():
                        for kind, percent, name in hot_functions(args.profile / f"{label}.txt"):
                            print(f"    {kind:>6} {percent:5.1f} %  {name}")
        finally:
            seaweed.stop()
    base = [m.ms_per_request for m in results if m.rev == revs[0]]
    for rev in revs:
        mine = [m.ms_per_request for m in results if m.rev == rev]
        ratio = (sum(mine) / len(mine)) / (sum(base) / len(base))
        print(f"[cpu] {rev}: mean {sum(mine) / len(mine):.2f} ms CPU/request, {ratio:.2f} x {revs[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
