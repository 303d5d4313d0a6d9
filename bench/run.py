"""``python -m bench``: run every scenario in one go and write ``bench/results/latest.json`` and ``BENCHMARKS.md``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from browser_py.engine.upload import EngineConfig
from tests.support.files import random_file, sha256_file
from tests.support.seaweed import start_seaweed
from wire.plan import MiB

from . import assets, link, report, scenarios
from . import engines as bench_engines
from .harness import CHROMIUM, ENGINE, PEERS, Stack, browser

ROOT = assets.ROOT
RESULTS = ROOT / "bench" / "results"
RUNTIME = ROOT / "build" / "runtime"


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    engine_concurrency = EngineConfig().concurrency
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", type=_size, default=512 * MiB, help="source file size (default 512MiB)")
    parser.add_argument("--part-size", type=_size, default=8 * MiB, help="part size for every contender (8MiB)")
    parser.add_argument("--concurrency", type=int, default=engine_concurrency,
                        help=f"parts in flight for every contender (default: the engine's, {engine_concurrency})")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each: one cold and one warm run)")
    parser.add_argument("--sweep-reps", type=int, default=2, help="runs per sweep cell (default 2)")
    parser.add_argument("--ready-rounds", type=int, default=5, help="worker-ready samples of each kind (5)")
    parser.add_argument("--contenders", default=",".join((ENGINE, *PEERS)), help="comma-separated")
    parser.add_argument("--memory-size", type=_size, default=4 << 30,
                        help="the large file of the memory check (default 4GiB; 0 skips the check)")
    parser.add_argument("--skip", default="", help="comma-separated scenarios to skip: ready,engines,throughput,resume,"
                        "sweep,memory,cpython")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 64 MiB, 1 round, small sweep, no 4 GiB")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite BENCHMARKS.md and the chart")
    parser.add_argument("--link", type=link.check_rate, action="append", default=[],
                        help="also run inside a network namespace limited to this rate (tc tbf, MTU 1500), e.g. "
                        "20mbit; repeatable; results to bench/results/link-<rate>.json, shown in BENCHMARKS.md")
    parser.add_argument("--link-size", type=_size, default=32 * MiB, help="source file size of the link runs (32MiB)")
    parser.add_argument("--inside-link", type=link.check_rate, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside_link:  # beside the loopback run's file, where the report looks for it
        args.out = args.out.parent / f"link-{args.inside_link}.json"
    if args.quick:
        args.size, args.rounds, args.memory_size, args.sweep_reps, args.ready_rounds = 64 * MiB, 1, 0, 1, 1
    return args


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    seaweed = subprocess.run([str(Path(sys.executable).parent / "weed"), "version"], capture_output=True, text=True,
                             check=False).stdout.strip().splitlines()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip(),
        "chromium": chromium,
        "seaweedfs": seaweed[0] if seaweed else "",
        "load_average_at_start": os.getloadavg(),
    }


def copy_runtime(target: Path, source: Path = RUNTIME) -> Path:
    """A copy of the built runtime (hard links where possible: the build replaces files, never edits them)."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)
    return target


def plain_runtime(target: Path, source: Path) -> Path:
    """The runtime without its snapshot: what the worker boots from when there is none."""
    copy_runtime(target, source)
    runtime = json.loads((target / "runtime.json").read_text())
    runtime.pop("snapshot", None)
    (target / "runtime.json").unlink()
    (target / "runtime.json").write_text(json.dumps(runtime))
    return target


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a `timeout`, CI) unwinds like Ctrl-C, so SeaweedFS, servers and Chromium are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args(argv)
    if args.link:
        # Each profile is this same run, in its own shaped namespace, after the loopback one.
        plain = _without_links(list(sys.argv[1:] if argv is None else argv))
        status = _main(args, plain)
        for rate in args.link:
            # Throughput and first visit only, on a smaller file (32 MiB at 20 Mbit/s is ~15 s per upload); the
            # later arguments win over the loopback run's.
            shaped = [*plain, "--no-report", "--size", str(args.link_size),
                      "--skip", "engines,resume,sweep,memory,cpython"]
            status |= link.run_shaped(rate, shaped)
        if not args.no_report:
            report.write(json.loads((args.out).read_text()), args.out)
        return status
    return _main(args, list(sys.argv[1:] if argv is None else argv))


def _without_links(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg == "--link":
            skip_next = True
        elif not arg.startswith("--link="):
            out.append(arg)
    return out


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {text}", flush=True)

    if not (RUNTIME / "runtime.json").exists():
        sys.exit("build/runtime is missing: run `make assets` (make bench does it)")
    say("installing and bundling the peers (npm ci, esbuild)")
    assets.prepare()
    data: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (" ARGS='" + " ".join(argv) + "'" if argv else ""),
        "link": {"rate": args.inside_link, "mtu": link.MTU, "qdisc": "tbf"} if args.inside_link else None,
        "machine": machine(),
        "versions": assets.versions(),
        "settings": {"file_size": args.size, "part_size": args.part_size, "concurrency": args.concurrency,
                     "rounds": args.rounds, "warm_s": scenarios.WARM_S, "contenders": contenders,
                     "sweep_reps": args.sweep_reps, "ready_rounds": args.ready_rounds},
    }
    errors: dict[str, str] = {}

    def attempt(name: str, work: Callable[[], None]) -> None:
        """One scenario; a failure is recorded (and the run fails at the end) but the others still run."""
        if name in skip:
            return
        try:
            work()
        except Exception:
            errors[name] = traceback.format_exc(limit=6)
            say(f"{name} FAILED:\n{errors[name]}")

    with tempfile.TemporaryDirectory(prefix="smartcat-bench-") as tmp_name:
        tmp = Path(tmp_name)
        say(f"writing a {args.size >> 20} MiB random source file")
        source = random_file(tmp / f"bench-{args.size >> 20}mib.bin", args.size)
        source_sha = sha256_file(source)
        # A private copy: a build (make assets, an e2e session) replacing build/runtime mid-run must not swap the
        # engine or delete its snapshot under the bench.
        runtime_dir = copy_runtime(tmp / "runtime")
        runtime = json.loads((runtime_dir / "runtime.json").read_text())
        data["versions"].update(engine_wheel=Path(runtime["engine_wheel_url"]).name,
                                snapshot=runtime.get("snapshot", {}).get("key"))
        seaweed = start_seaweed(tmp / "seaweedfs")
        web = assets.web_dir(tmp / "web")
        from tests.support.live_server import LiveServer, settings_for

        # Every contender gets the same part size: the engine's own choice from earlier uploads (adaptive_part_size)
        # would differ from run to run; the sweep shows what part size does instead.
        server = LiveServer(settings_for(seaweed, tmp / "server", web_dir=web, runtime_dir=runtime_dir,
                                         part_size_bytes=args.part_size, adaptive_part_size=False)).start()
        stack = Stack(seaweed, server, web, runtime_dir, args.part_size)
        try:
            with sync_playwright() as playwright:

                def ready() -> None:
                    say("worker ready: snapshot (cached, first visit) and plain boots")
                    plain = stack.server_for(tmp / "plain-server",
                                             runtime_dir=plain_runtime(tmp / "plain-runtime", runtime_dir))
                    data["worker_ready"] = scenarios.worker_ready(playwright, stack, plain, tmp,
                                                                  rounds=args.ready_rounds, say=say)

                attempt("ready", ready)

                def engines() -> None:
                    say("worker ready in Firefox and WebKit (first visit, returning visit)")
                    data["engines_ready"] = bench_engines.worker_ready_engines(stack, tmp,
                                                                               rounds=args.ready_rounds, say=say)

                attempt("engines", engines)
                with browser(playwright, tmp / "profile") as chromium:

                    def throughput() -> None:
                        say(f"throughput: {len(contenders)} contenders x {args.rounds} rounds x (cold, warm)")
                        runs = scenarios.throughput_rounds(chromium, stack, contenders, source, source_sha,
                                                           rounds=args.rounds, concurrency=args.concurrency, say=say)
                        data["runs"] = [r.as_dict() for r in runs]
                        data["contenders"] = scenarios.summarize(runs, contenders)

                    def sweep() -> None:
                        parts = [8 * MiB, 32 * MiB] if args.quick else [8 * MiB, 16 * MiB, 32 * MiB, 64 * MiB]
                        concs = [2, 4] if args.quick else [2, 4, 6, 8]
                        sweep_source = source
                        if args.size > 256 * MiB:  # the grid is large: a smaller file keeps it to minutes
                            sweep_source = random_file(tmp / "bench-sweep.bin", 256 * MiB)
                        say(f"sweep: raw {len(parts)} part sizes x {len(concs)} concurrencies, engine x part size, "
                            f"{args.sweep_reps} runs each")
                        data["sweep"] = scenarios.sweep(chromium, stack, sweep_source, tmp, part_sizes=parts,
                                                        concurrencies=concs, engine_concurrency=args.concurrency,
                                                        reps=args.sweep_reps, say=say)

                    def memory() -> None:
                        sources = [random_file(tmp / "bench-64mib.bin", 64 * MiB)]
                        if args.memory_size:
                            say(f"memory: writing a {args.memory_size >> 20} MiB source file")
                            sources.append(random_file(tmp / "bench-large.bin", args.memory_size))
                        try:
                            data["memory"] = scenarios.memory(chromium, stack, sources,
                                                              concurrency=args.concurrency, say=say)
                        finally:
                            for extra in sources[1:]:
                                extra.unlink()

                    attempt("throughput", throughput)
                    attempt("sweep", sweep)
                    attempt("memory", memory)

                def resume() -> None:
                    say("close and resume: every contender, through the recording proxy")
                    data["resume"] = scenarios.resume(playwright, stack, contenders, source, tmp,
                                                      concurrency=args.concurrency, rate=60e6, say=say)

                attempt("resume", resume)

            def cpython() -> None:
                say("CPython adapter vs boto3 upload_file")
                data["cpython"] = scenarios.cpython_vs_boto3(stack, source, tmp, rounds=args.rounds,
                                                             concurrency=args.concurrency, say=say)

            attempt("cpython", cpython)
        finally:
            stack.stop()
            seaweed.stop()
    if errors:
        data["errors"] = errors
    data["elapsed_s"] = round(time.monotonic() - started)
    report.derive(data)
    scenarios.dump(args.out, data)
    say(f"wrote {args.out}")
    if not args.no_report:
        report.write(data, args.out)
        say("wrote BENCHMARKS.md and the chart")
    return 1 if errors else 0
