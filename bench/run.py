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
from functools import partial
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


#: Every scenario, in the order a run does them; ``plain`` is the worker-ready scenario's boot without a snapshot.
SCENARIOS = ("ready", "plain", "engines", "throughput", "sweep", "memory", "saved", "resume", "cpython")
#: The link profiles ``make bench`` runs by default: every contender's throughput and CPU, and the first visit.
LINKS = ("100mbit", "20mbit")
#: Profiles where only the first visit is measured ("engine ready <= 2 s on a 50 Mbit/s profile", issue 17).
READY_LINKS = ("50mbit",)


def _sizes(text: str) -> list[int]:
    return [_size(t) for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    engine_concurrency = EngineConfig().concurrency
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", type=_size, default=256 * MiB, help="source file size (default 256MiB)")
    parser.add_argument("--part-size", type=_size, default=8 * MiB, help="part size for every contender (8MiB)")
    parser.add_argument("--concurrency", type=int, default=engine_concurrency,
                        help=f"parts in flight for every contender (default: the engine's, {engine_concurrency})")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (each: one cold and one warm run)")
    parser.add_argument("--sweep-reps", type=int, default=2, help="runs per sweep cell (default 2)")
    parser.add_argument("--sweep-parts", type=_sizes, default=[8 * MiB, 32 * MiB, 64 * MiB],
                        help="part sizes of the sweep (8MiB,32MiB,64MiB)")
    parser.add_argument("--sweep-concurrencies", type=_ints, default=[2, 4, 8],
                        help="raw's concurrencies in the sweep (2,4,8)")
    parser.add_argument("--ready-rounds", type=int, default=3, help="worker-ready samples of each kind (3)")
    parser.add_argument("--contenders", default=",".join((ENGINE, *PEERS)), help="comma-separated")
    parser.add_argument("--memory-size", type=_size, default=4 << 30,
                        help="the large file of the memory check (default 4GiB; 0: 64 MiB only)")
    parser.add_argument("--memory-contenders", default="engine,raw-sha256",
                        help="contenders of the memory check (default engine,raw-sha256: the control that hashes)")
    parser.add_argument("--saved-size", type=_size, default=1 << 30, help="file of the pick -> saved check (1GiB)")
    parser.add_argument("--saved-rounds", type=int, default=1, help="cold and warm pick -> saved runs (1)")
    parser.add_argument("--skip", default="", help="comma-separated scenarios to skip: " + ",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 64 MiB, 1 round, small sweep, memory and saved at 64 MiB, no link profile "
                        "unless --link/--ready-link are given")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json",
                        help="the run's JSON; link runs go beside it (link-<rate>.json), and outside bench/results "
                        "the page and chart too (BENCHMARKS.md, latest.png there, not the repository's)")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite BENCHMARKS.md and the chart")
    parser.add_argument("--link", type=link.check_rate, action="append", default=None,
                        help="a link profile: the throughput and first-visit scenarios again inside a network "
                        "namespace limited to this rate (tc tbf, MTU 1500), after the loopback run; repeatable "
                        f"(default {' '.join(LINKS)}; root only)")
    parser.add_argument("--ready-link", type=link.check_rate, action="append", default=None,
                        help=f"a profile where only the first visit is measured (default {' '.join(READY_LINKS)})")
    parser.add_argument("--no-links", action="store_true", help="the loopback run only")
    parser.add_argument("--link-size", type=_size, default=32 * MiB, help="source file size of the link runs (32MiB)")
    parser.add_argument("--link-rounds", type=int, default=1, help="interleaved rounds in the link runs (1)")
    parser.add_argument("--link-ready-rounds", type=int, default=3, help="worker-ready samples in link runs (3)")
    parser.add_argument("--inside-link", type=link.check_rate, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SCENARIOS)
    if unknown:
        parser.error(f"--skip: no scenario {', '.join(sorted(unknown))} (there are {', '.join(SCENARIOS)})")
    if args.inside_link:  # beside the loopback run's file, where the report looks for it
        args.out = args.out.parent / f"link-{args.inside_link}.json"
    if args.quick:
        args.size, args.rounds, args.memory_size, args.sweep_reps, args.ready_rounds = 64 * MiB, 1, 0, 1, 1
        args.sweep_parts, args.sweep_concurrencies, args.saved_size, args.link_ready_rounds = \
            [8 * MiB, 32 * MiB], [2, 4], 64 * MiB, 1
    if args.link is None:
        args.link = [] if args.quick or args.no_links else list(LINKS)
    if args.ready_link is None:
        args.ready_link = [] if args.quick or args.no_links else list(READY_LINKS)
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


def _clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a `timeout`, CI) unwinds like Ctrl-C, so SeaweedFS, servers and Chromium are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    given = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(given)
    if args.inside_link:
        return _main(args, given)
    begun = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    # The loopback run, then each link profile: the same harness in a shaped namespace, run by run.
    plan: list[tuple[str, Callable[[], int]]] = [("loopback", lambda: _main(args, given))]
    plan += [(f"link {rate}", partial(link.run_shaped, rate, _shaped_argv(args, ready_only=False)))
             for rate in args.link]
    plan += [(f"first visit {rate}", partial(link.run_shaped, rate, _shaped_argv(args, ready_only=True)))
             for rate in args.ready_link]
    steps: dict[str, dict[str, Any]] = {}
    status = 0
    for i, (name, work) in enumerate(plan):
        print(f"[{_clock()}] ===== step {i + 1}/{len(plan)}: {name} =====", flush=True)
        step_started = time.monotonic()
        error = ""
        try:
            code = work()
        except Exception as failure:  # a profile that cannot run (no root, no tc) is recorded; the others go on
            code, error = 1, f"{type(failure).__name__}: {failure}"
            print(f"[{_clock()}] {name} FAILED: {error}", flush=True)
        steps[name] = {"elapsed_s": round(time.monotonic() - step_started), "ok": code == 0,
                       "error": error or (f"exit status {code}: see the run's output" if code else "")}
        status |= code
        print(f"[{_clock()}] {name}: {'done' if code == 0 else 'FAILED (see above)'} in "
              f"{steps[name]['elapsed_s']} s", flush=True)
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    if data.get("generated_at", "") < begun:
        print(f"[{_clock()}] the loopback run wrote no {args.out}: nothing to report", flush=True)
        return 1
    data["steps"] = steps
    data["elapsed_s"] = round(time.monotonic() - started)
    scenarios.dump(args.out, data)
    if not args.no_report:
        page, chart = (report.BENCHMARKS, report.CHART) if args.out.parent.resolve() == RESULTS.resolve() else (
            args.out.parent / "BENCHMARKS.md", args.out.with_suffix(".png"))
        report.finish(args.out, page, chart)
        print(f"[{_clock()}] wrote {page} and {chart}", flush=True)
    print(f"[{_clock()}] all done in {data['elapsed_s']} s: "
          + ", ".join(f"{name} {v['elapsed_s']} s{'' if v['ok'] else ' (failed)'}" for name, v in steps.items()),
          flush=True)
    return status


def _shaped_argv(args: argparse.Namespace, *, ready_only: bool) -> list[str]:
    """The arguments of one link profile's run: throughput and the snapshot first visit (or the first visit only),
    on the link's smaller file, minus what this run skips."""
    keep = {"ready"} if ready_only else {"ready", "throughput"}
    skip = [name for name in SCENARIOS if name not in keep or name in args.skip]
    return ["--out", str(args.out), "--size", str(8 * MiB if ready_only else args.link_size),
            "--rounds", str(args.link_rounds), "--ready-rounds", str(args.link_ready_rounds),
            "--part-size", str(args.part_size), "--concurrency", str(args.concurrency),
            "--contenders", args.contenders, "--skip", ",".join(skip), "--no-links", "--no-report"]


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    skip: set[str] = args.skip
    started = time.monotonic()
    profile = args.inside_link or "loopback"

    def say(text: str) -> None:
        print(f"[{_clock()} {profile} {time.monotonic() - started:5.0f} s] {text}", flush=True)

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
                     "sweep_reps": args.sweep_reps, "ready_rounds": args.ready_rounds,
                     "memory_size": args.memory_size, "saved_size": args.saved_size,
                     "scenarios": [name for name in SCENARIOS if name not in skip],
                     "links": args.link, "ready_links": args.ready_link},
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
                    say("worker ready: snapshot (cached, first visit)" + ("" if "plain" in skip else ", plain boots"))
                    plain = None if "plain" in skip else stack.server_for(
                        tmp / "plain-server", runtime_dir=plain_runtime(tmp / "plain-runtime", runtime_dir))
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
                        runs, failures = scenarios.throughput_rounds(
                            chromium, stack, contenders, source, source_sha, rounds=args.rounds,
                            concurrency=args.concurrency, say=say)
                        data["runs"] = [r.as_dict() for r in runs]
                        data["contenders"] = scenarios.summarize(runs, contenders)
                        if failures:
                            data["failed_runs"] = failures
                            raise AssertionError(f"{len(failures)} upload(s) failed: " + "; ".join(failures))

                    def sweep() -> None:
                        parts, concs = args.sweep_parts, args.sweep_concurrencies
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
                            data["memory"] = scenarios.memory(
                                chromium, stack, sources, contenders=[
                                    c.strip() for c in args.memory_contenders.split(",") if c.strip()],
                                concurrency=args.concurrency, say=say)
                        finally:
                            for extra in sources[1:]:
                                extra.unlink()

                    def saved() -> None:
                        say(f"pick -> saved: {args.saved_size >> 20} MiB, {args.saved_rounds} x (cold, warm)")
                        file = source if args.saved_size == args.size else random_file(
                            tmp / "bench-saved.bin", args.saved_size)
                        try:
                            data["saved"] = scenarios.saved(chromium, stack, stack.server, file,
                                                            rounds=args.saved_rounds, concurrency=args.concurrency,
                                                            say=say)
                        finally:
                            if file != source:
                                file.unlink()

                    attempt("throughput", throughput)
                    attempt("saved", saved)
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
    return 1 if errors else 0
