"""``python -m load``: Locust, headless, against one and two server instances on PostgreSQL; results in
``load/results/latest.json``, ``load/results/load.png`` and the load section of ``BENCHMARKS.md``.

Scenarios, each on a fresh database and bucket (one PostgreSQL cluster and one SeaweedFS for the whole run):

- ``ramp``: one instance, users growing step by step (default 1, 100, 250, 500, 750, 1000): where it breaks first
  (the one-user step is the baseline: the latency floor of this machine at the time of the run);
- ``two``: two instances behind nginx at the target load (500 users), part PUTs through nginx's store route on the
  app's origin (``PART_URL_BASE``), as production runs it;
- ``soak``: one instance at the target load for ``--soak-seconds`` (600), server memory sampled all along.

Server CPU and memory come from ``/proc`` (psutil) of the ``python -m server`` processes, sampled every second.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support.instances import ServerInstances
from tests.support.postgres import PostgresCluster
from tests.support.redis import RedisServer
from tests.support.seaweed import SeaweedService, start_seaweed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "load" / "results"
LOCUSTFILE = ROOT / "load" / "locustfile.py"
#: Targets from the issue: at 500 users on one instance, no error and p99 of the URL request under 100 ms.
TARGET_USERS = 500
TARGET_P99_URLS_MS = 100.0
#: Locust rows that are not requests to the servers.
NOT_SERVER = {"Aggregated", "PUT part (store)"}


@dataclass
class Sample:
    t: float
    cpu_percent: float  # of one core, summed over the server processes
    rss_mib: float  # summed over the server processes
    load1: float


@dataclass
class RunResult:
    scenario: str
    instances: int
    users: int
    seconds: float
    endpoints: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    locust_cpu_warning: bool = False
    #: Where part PUTs went: straight to the store, or through nginx's store route (PART_URL_BASE).
    parts: str = "store"
    #: Seconds of spawning before the measured window (Locust's stats are reset once every user runs).
    spawn_seconds: float = 0.0

    @property
    def errors(self) -> int:
        return int(sum(row["failures"] for name, row in self.endpoints.items() if name != "Aggregated"))

    def cpu_ms_per_request(self) -> float:
        """Server CPU (all instances) per request the servers answered, over the measured window."""
        window = [s.cpu_percent for s in self.samples if s.t > self.spawn_seconds]
        answered = sum(row["requests"] for name, row in self.endpoints.items() if name not in NOT_SERVER)
        return round(10.0 * sum(window) / answered, 1) if answered and window else 0.0

    def summary(self) -> dict[str, Any]:
        cpu = [s.cpu_percent for s in self.samples[2:]] or [0.0]
        rss = [s.rss_mib for s in self.samples] or [0.0]
        load = [s.load1 for s in self.samples] or [0.0]
        return {
            "server_cpu_percent_mean": round(sum(cpu) / len(cpu), 1),
            "server_cpu_percent_max": round(max(cpu), 1),
            "server_rss_mib_start": round(rss[0], 1),
            "server_rss_mib_end": round(rss[-1], 1),
            "server_rss_mib_max": round(max(rss), 1),
            "load_average_mean": round(sum(load) / len(load), 2),
            "server_cpu_ms_per_request": self.cpu_ms_per_request(),
        }


class Sampler(threading.Thread):
    """Every ``interval`` seconds: CPU (from utime + stime deltas) and RSS of the given processes, and load avg."""

    def __init__(self, pids: list[int], interval: float = 1.0) -> None:
        super().__init__(name="proc-sampler", daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()

    def _cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes:
            times = process.cpu_times()
            total += times.user + times.system
        return total

    def run(self) -> None:
        start = time.monotonic()
        last_t, last_cpu = start, self._cpu_seconds()
        while not self._stop_event.wait(self.interval):
            now, cpu = time.monotonic(), self._cpu_seconds()
            rss = sum(process.memory_info().rss for process in self.processes) / 2**20
            percent = 100.0 * (cpu - last_cpu) / max(now - last_t, 1e-6)
            self.samples.append(Sample(round(now - start, 1), round(percent, 1), round(rss, 1), os.getloadavg()[0]))
            last_t, last_cpu = now, cpu

    def stop(self) -> list[Sample]:
        self._stop_event.set()
        self.join()
        return self.samples


def _read_stats(prefix: Path) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    endpoints: dict[str, dict[str, float]] = {}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["Request Count"] or row["Request Count"] == "0":
                continue
            endpoints[row["Name"]] = {
                "requests": float(row["Request Count"]),
                "failures": float(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
                "p50_ms": float(row["50%"]),
                "p99_ms": float(row["99%"]),
                "max_ms": round(float(row["Max Response Time"]), 1),
            }
    failures: list[dict[str, Any]] = []
    with open(f"{prefix}_failures.csv", newline="") as handle:
        failures.extend(
            {"name": row["Name"], "error": row["Error"][:300], "count": int(row["Occurrences"])}
            for row in csv.DictReader(handle)
        )
    return endpoints, failures


def drive(stack: ServerInstances, scenario: str, users: int, seconds: int, work: Path, think: float) -> RunResult:
    """Spawn ``users`` Locust users (stats reset once all run), keep them ``seconds``, then read the results."""
    prefix = work / f"{scenario}-{users}"
    sampler = Sampler(stack.pids)
    sampler.start()
    spawn_rate = max(10, users // 10)
    env = {**os.environ, "LOAD_THINK_SECONDS": str(think)}
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", stack.origin,
        "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds + users // spawn_rate}s", "--reset-stats",
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "15", "--loglevel", "WARNING",
    ]  # fmt: skip
    locust = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, check=False)
    samples = sampler.stop()
    (work / f"{prefix.name}.locust.log").write_text(locust.stdout + locust.stderr, encoding="utf-8")
    endpoints, failures = _read_stats(prefix)
    result = RunResult(scenario, stack.instances, users, seconds, endpoints, failures, samples)
    result.spawn_seconds = users / spawn_rate
    result.locust_cpu_warning = "CPU usage above" in locust.stderr
    return result


def one_stack(
    scenario: str,
    instances: int,
    steps: list[tuple[int, int]],
    postgres: PostgresCluster,
    seaweed: SeaweedService,
    work: Path,
    think: float,
    rate_limit_uri: str,
    *,
    store_route: bool = False,
) -> list[RunResult]:
    results = []
    with ServerInstances(
        work / scenario, instances, postgres, seaweed, rate_limit_uri, store_route=store_route
    ) as stack:
        for users, seconds in steps:
            print(f"[load] {scenario}: {instances} instance(s), {users} users, {seconds} s", flush=True)
            result = drive(stack, scenario, users, seconds, work, think)
            result.parts = "nginx store route" if store_route else "store"
            result.events = stack.events()
            results.append(result)
            print(f"[load]   errors {result.errors}, urls {result.endpoints.get('urls')}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ramp", default="1,100,250,500", help="users per step of the ramp (one instance; 1: the floor)"
    )
    parser.add_argument("--step-seconds", type=int, default=60, help="seconds at each step, after spawning")
    parser.add_argument("--users", type=int, default=TARGET_USERS, help="users of the two-instance run (the target)")
    parser.add_argument("--soak-seconds", type=int, default=600, help="0: no soak")
    parser.add_argument("--soak-users", type=int, default=100, help="users of the soak (a load one instance holds)")
    parser.add_argument("--think", type=float, default=1.0, help="seconds each user waits between steps")
    parser.add_argument(
        "--rate-limit-uri", default="", help="RATE_LIMIT_STORAGE_URI of the servers (default: a private Redis)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 users, 10 s steps, no soak")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and load.png go")
    parser.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md as it is")
    args = parser.parse_args(argv)
    if args.quick:
        args.ramp, args.step_seconds, args.users, args.soak_seconds = "20", 10, 20, 0
    ramp = [int(users) for users in args.ramp.split(",") if users]
    started = time.time()
    runs: list[RunResult] = []

    def save(done: list[RunResult]) -> dict[str, Any]:
        """Write what is measured so far: a later scenario that fails loses nothing before it."""
        document = _document(args, started, done)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latest.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        return document

    with (
        tempfile.TemporaryDirectory(prefix="smartcat-load-") as temp,
        PostgresCluster() as postgres,
        RedisServer() as redis,
    ):
        work = Path(temp)
        seaweed = start_seaweed(work / "seaweedfs")
        try:
            common = (postgres, seaweed, work, args.think, args.rate_limit_uri or redis.url)
            runs = one_stack("ramp", 1, [(u, args.step_seconds) for u in ramp], *common)
            save(runs)
            runs += one_stack("two", 2, [(args.users, args.step_seconds)], *common, store_route=True)
            save(runs)
            if args.soak_seconds:
                runs += one_stack("soak", 1, [(args.soak_users, args.soak_seconds)], *common)
        finally:
            seaweed.stop()
    document = save(runs)
    from load.report import write_report  # matplotlib only when there is something to draw

    write_report(document, args.out, update_benchmarks=not args.no_report)
    print(f"[load] results in {args.out}", flush=True)
    return 0


def _document(args: argparse.Namespace, started: float, runs: list[RunResult]) -> dict[str, Any]:
    return {
        "command": " ".join(["python -m load", *sys.argv[1:]]).strip() if sys.argv[1:] else "make load",
        "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "think_seconds": args.think,
        "rate_limit_storage": "memory" if args.rate_limit_uri.startswith("memory") else "redis",
        "target_users": args.users,
        "runs": [{**asdict(run), "summary": run.summary(), "errors": run.errors} for run in runs],
    }
