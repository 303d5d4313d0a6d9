"""``python -m load``: Locust, headless, against one and two server instances on PostgreSQL; results in
``load/results/latest.json``, ``load/results/load.png`` and the load section of ``BENCHMARKS.md``.

Two load models (``load/locustfile.py``): ``session``, browsers uploading files at their users' upload rate as our
engine does (the target rows), and ``churn``, one-part files back to back with a 1 s think time (the stress rows:
~30 times the server requests per user). Scenarios, each on a fresh database and bucket (one PostgreSQL cluster and
one SeaweedFS for the whole run), each row naming its model:

- ``ramp`` (session): one instance, users growing step by step (default 100, 250, 500);
- ``two`` (session): two instances behind nginx at the target load (500 users), part PUTs through nginx's store
  route on the app's origin (``PART_URL_BASE``), as production runs it;
- ``workers`` (session): one instance with ``WORKERS`` = ``--workers`` (2) uvicorn worker processes at the target
  load, parts straight to the store as in the ramp, so it differs from the ramp's last step only in its workers;
- ``churn``: one instance, steps of ``--churn-ramp`` (default 1 and 500: the one-user step is the latency floor of
  this machine at the time of the run, the 500 one where it breaks first);
- ``soak`` (session): one instance at the target load for ``--soak-seconds`` (600), server memory sampled all along
  (RSS start → end and its slope over the soak's second half).

Server CPU and memory come from ``/proc`` (psutil) of the ``python -m server`` processes and their children (uvicorn
worker processes), sampled every second. After each step the outbox is given time to drain (every event delivered or
failed) and the time it took is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from load.model import SessionModel
from load.stats import Sample, read_stats, rss_slope, short_reason
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
#: The Locust user class of each model (load/locustfile.py).
USER_CLASSES = {"session": "SessionUploader", "churn": "ChurnUploader"}
DEFAULT_MODEL = SessionModel()
SCENARIOS = {"ramp", "two", "workers", "churn", "soak"}


@dataclass
class RunResult:
    scenario: str
    instances: int
    users: int
    seconds: float
    endpoints: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    events: dict[str, Any] = field(default_factory=dict)
    locust_cpu_warning: bool = False
    #: Where part PUTs went: straight to the store, or through nginx's store route (PART_URL_BASE).
    parts: str = "store"
    #: Seconds of spawning before the measured window (Locust's stats are reset once every user runs).
    spawn_seconds: float = 0.0
    #: The load model (``session`` or ``churn``) and the uvicorn worker processes per instance.
    model: str = "session"
    workers: int = 1

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
            "server_rss_mib_per_minute": rss_slope(self.samples),
            "load_average_mean": round(sum(load) / len(load), 2),
            "server_cpu_ms_per_request": self.cpu_ms_per_request(),
        }


class Sampler(threading.Thread):
    """Every ``interval`` seconds: CPU (from utime + stime deltas) and RSS of the given processes and their
    children (uvicorn's worker processes), and the load average."""

    def __init__(self, pids: list[int], interval: float = 1.0) -> None:
        super().__init__(name="proc-sampler", daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()

    def _tree(self) -> list[psutil.Process]:
        tree: list[psutil.Process] = []
        for process in self.processes:
            try:
                tree += [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return tree

    def _measure(self) -> dict[int, tuple[float, float]]:
        """CPU seconds (user + system) and RSS bytes of every process of the tree, by pid."""
        measured: dict[int, tuple[float, float]] = {}
        for process in self._tree():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    measured[process.pid] = (times.user + times.system, process.memory_info().rss)
            except psutil.NoSuchProcess:
                continue
        return measured

    def run(self) -> None:
        start = time.monotonic()
        last_t, last = start, self._measure()
        while not self._stop_event.wait(self.interval):
            now, current = time.monotonic(), self._measure()
            # A process that appeared in between (a worker started) counts from zero.
            used = sum(cpu - last.get(pid, (0.0, 0.0))[0] for pid, (cpu, _rss) in current.items())
            rss = sum(rss for _cpu, rss in current.values()) / 2**20
            percent = 100.0 * used / max(now - last_t, 1e-6)
            self.samples.append(Sample(round(now - start, 1), round(percent, 1), round(rss, 1), os.getloadavg()[0]))
            last_t, last = now, current

    def stop(self) -> list[Sample]:
        self._stop_event.set()
        self.join()
        return self.samples


@dataclass(frozen=True)
class Scenario:
    """A stack (instances, workers, where parts go) and the steps (users, seconds) one model runs on it."""

    name: str
    model: str
    instances: int
    steps: list[tuple[int, int]]
    store_route: bool = False
    workers: int = 1
    #: Users arrive over this many seconds. Session users start at a random part of their first file, but each
    #: still creates its session on arrival: 500 arriving in 10 s would be a burst of creates ~16 times the steady
    #: rate (500 per 161 s), queued into the measured window.
    spawn_seconds: float = 10.0


def drive(
    stack: ServerInstances, scenario: Scenario, users: int, seconds: int, work: Path, model_env: Mapping[str, str]
) -> RunResult:
    """Spawn ``users`` Locust users (stats reset once all run), keep them ``seconds``, then read the results."""
    prefix = work / f"{scenario.name}-{users}"
    sampler = Sampler(stack.pids)
    sampler.start()
    spawn_rate = max(1.0, users / scenario.spawn_seconds)
    spawning = math.ceil(users / spawn_rate)
    # A churn user finishes its file (a few seconds); a session user's file lasts minutes: it stops mid-file, as a
    # browser closed at that moment would.
    stop_timeout = "15" if scenario.model == "churn" else "0"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), USER_CLASSES[scenario.model], "--headless",
        "--host", stack.origin, "-u", str(users), "-r", f"{spawn_rate:g}", "-t", f"{seconds + spawning}s",
        "--reset-stats", "--csv", str(prefix), "--only-summary", "--stop-timeout", stop_timeout,
        "--loglevel", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, **model_env}
    locust = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, check=False)
    samples = sampler.stop()
    (work / f"{prefix.name}.locust.log").write_text(locust.stdout + locust.stderr, encoding="utf-8")
    if not Path(f"{prefix}_stats.csv").exists():
        raise RuntimeError(f"locust wrote no statistics (exit {locust.returncode}): {locust.stderr[-2000:]}")
    endpoints, failures = read_stats(prefix)
    result = RunResult(scenario.name, stack.instances, users, seconds, endpoints, failures, samples)
    result.spawn_seconds = spawning
    result.locust_cpu_warning = "CPU usage above" in locust.stderr
    result.model, result.workers = scenario.model, scenario.workers
    return result


def run_scenario(
    scenario: Scenario,
    postgres: PostgresCluster,
    seaweed: SeaweedService,
    work: Path,
    rate_limit_uri: str,
    model_env: Mapping[str, str],
) -> Iterator[RunResult]:
    """Each step's result as soon as it is measured (a later step that fails loses nothing before it)."""
    environment = {"WORKERS": str(scenario.workers)} if scenario.workers > 1 else {}
    with ServerInstances(
        work / scenario.name,
        scenario.instances,
        postgres,
        seaweed,
        rate_limit_uri,
        environment,
        store_route=scenario.store_route,
    ) as stack:
        for users, seconds in scenario.steps:
            say(
                f"{scenario.name} ({scenario.model}): {scenario.instances} instance(s) x {scenario.workers} "
                f"worker(s), {users} users, {seconds} s"
            )
            result = drive(stack, scenario, users, seconds, work, model_env)
            result.parts = "nginx store route" if scenario.store_route else "store"
            result.events = stack.events()
            say(f"  errors {result.errors}, urls {result.endpoints.get('urls')}, events {result.events}")
            yield result


def say(text: str) -> None:
    """A progress line with the time of day, so a run's log shows what each step took."""
    print(f"[load {time.strftime('%H:%M:%S')}] {text}", flush=True)


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The run's scenarios in order: the target rows (session model) first, then the stress rows, then the soak."""
    ramp = [int(users) for users in args.ramp.split(",") if users]
    churn = [int(users) for users in args.churn_ramp.split(",") if users]
    arrive = args.spawn_seconds
    chosen = [
        Scenario("ramp", "session", 1, [(u, args.step_seconds) for u in ramp], spawn_seconds=arrive),
        Scenario("two", "session", 2, [(args.users, args.step_seconds)], store_route=True, spawn_seconds=arrive),
    ]
    if args.workers > 1:
        target = [(args.users, args.step_seconds)]
        chosen.append(Scenario("workers", "session", 1, target, workers=args.workers, spawn_seconds=arrive))
    if churn:
        chosen.append(Scenario("churn", "churn", 1, [(u, args.step_seconds) for u in churn]))
    if args.soak_seconds:
        chosen.append(Scenario("soak", "session", 1, [(args.soak_users, args.soak_seconds)], spawn_seconds=arrive))
    only = {name for name in args.scenarios.split(",") if name}
    return [scenario for scenario in chosen if not only or scenario.name in only]


def model_environment(args: argparse.Namespace) -> dict[str, str]:
    """The ``LOAD_*`` variables both models read (load/locustfile.py), checked here so a bad one stops the run
    before any server starts."""
    environment = {
        "LOAD_THINK_SECONDS": str(args.think),
        "LOAD_PARTS": str(args.parts),
        "LOAD_USER_MBPS": str(args.user_mbps),
        "LOAD_RESUME_RATE": str(args.resume_rate),
    }
    SessionModel.from_environment(environment)
    return environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ramp",
        default="100,250,500",
        help="session users per step of the ramp (one instance; the latency floor is the churn run's one-user step: "
        "one session user makes a URL request every ~54 s)",
    )
    parser.add_argument("--step-seconds", type=int, default=60, help="seconds at each step, after spawning")
    parser.add_argument(
        "--spawn-seconds", type=float, default=60.0, help="session model: users arrive over this long (per step)"
    )
    parser.add_argument("--users", type=int, default=TARGET_USERS, help="users of the two-instance run (the target)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="uvicorn worker processes (WORKERS) of the one-instance run at the target (session model); 1: no such run",
    )
    parser.add_argument(
        "--churn-ramp", default="1,500", help="churn users per step (one instance; empty: no churn rows)"
    )
    parser.add_argument("--soak-seconds", type=int, default=600, help="0: no soak")
    parser.add_argument("--soak-users", type=int, default=TARGET_USERS, help="session users of the soak")
    parser.add_argument("--parts", type=int, default=DEFAULT_MODEL.parts, help="session model: parts per file")
    parser.add_argument(
        "--user-mbps", type=float, default=DEFAULT_MODEL.user_mbps, help="session model: each user's upload link"
    )
    parser.add_argument(
        "--resume-rate", type=float, default=DEFAULT_MODEL.resume_rate, help="session model: share of files resumed"
    )
    parser.add_argument("--think", type=float, default=1.0, help="churn model: seconds between a user's steps")
    parser.add_argument(
        "--rate-limit-uri", default="", help="RATE_LIMIT_STORAGE_URI of the servers (default: a private Redis)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 20 users, 20 s steps, 30 s soak, fast session links"
    )
    parser.add_argument(
        "--scenarios", default="", help="run only these, comma-separated (ramp,two,workers,churn,soak; default: all)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and load.png go")
    parser.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md as it is")
    args = parser.parse_args(argv)
    if args.quick:
        args.ramp, args.churn_ramp, args.step_seconds, args.users = "20", "20", 20, 20
        args.soak_users, args.soak_seconds, args.spawn_seconds = 20, min(args.soak_seconds, 30), 10.0
        args.parts, args.user_mbps = 20, 400.0  # files of a few seconds, so a short step sees every request kind
    if args.step_seconds < 1 or args.spawn_seconds <= 0 or args.soak_seconds < 0:
        parser.error("--step-seconds and --spawn-seconds must be positive, --soak-seconds not negative")
    try:
        model_env = model_environment(args)
    except ValueError as error:
        parser.error(str(error))
    unknown = {name for name in args.scenarios.split(",") if name} - SCENARIOS
    if unknown:
        parser.error(f"--scenarios: unknown {', '.join(sorted(unknown))} (choose from {', '.join(sorted(SCENARIOS))})")
    started = time.time()
    runs: list[RunResult] = []
    failed: list[str] = []

    def save(done: list[RunResult]) -> dict[str, Any]:
        """Write what is measured so far: a later scenario that fails loses nothing before it."""
        document = _document(args, started, done, failed)
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
            for scenario in scenarios(args):
                try:
                    for result in run_scenario(
                        scenario, postgres, seaweed, work, args.rate_limit_uri or redis.url, model_env
                    ):
                        runs.append(result)
                        save(runs)
                except Exception as error:  # the next scenarios still run; the report names this one
                    failed.append(f"{scenario.name}: {short_reason(error)}")
                    say(failed[-1])
        finally:
            seaweed.stop()
    document = save(runs)
    from load.report import write_report  # matplotlib only when there is something to draw

    write_report(document, args.out, update_benchmarks=not args.no_report)
    say(f"results in {args.out}")
    return 1 if failed else 0


def _document(args: argparse.Namespace, started: float, runs: list[RunResult], failed: list[str]) -> dict[str, Any]:
    model = SessionModel(parts=args.parts, user_mbps=args.user_mbps, resume_rate=args.resume_rate)
    return {
        "command": " ".join(["python -m load", *sys.argv[1:]]).strip() if sys.argv[1:] else "make load",
        "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "think_seconds": args.think,
        "session_model": {
            "parts": model.parts,
            "part_bytes": model.part_bytes,
            "user_mbps": model.user_mbps,
            "resume_rate": model.resume_rate,
            "seconds_per_part": round(model.part_seconds, 3),
            "server_requests_per_user_second": round(model.server_requests_per_user_second, 4),
            "puts_per_user_second": round(model.puts_per_user_second, 3),
        },
        "rate_limit_storage": "memory" if args.rate_limit_uri.startswith("memory") else "redis",
        "target_users": args.users,
        "runs": [{**asdict(run), "summary": run.summary(), "errors": run.errors} for run in runs],
        "failed_scenarios": failed,
    }
