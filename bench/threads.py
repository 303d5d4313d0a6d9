"""Where Chromium spends the CPU of one upload: per process kind and thread name, for each contender, read from
/proc (``/proc/<pid>/task/<tid>/stat``) before the pick and once the upload is done. This is how the engine's cost
per byte was taken apart (issue 17): the contenders' totals match ``python -m bench``'s, and the rows show which
thread pays (the worker's thread, the network service, the browser's file threads...).

    .venv/bin/python -m bench.threads --size 256MiB --rounds 2 --contenders engine,raw-sha256
    .venv/bin/python -m bench.threads --size 128MiB --rounds 3 --same-worker   # first upload in a worker vs later
    git archive HEAD~1 web | tar -x -C /tmp/before   # the page's files before a change, for an A/B:
    .venv/bin/python -m bench.threads --size 128MiB --rounds 2 --contenders engine --baseline-web /tmp/before/web

Prints a table of CPU s/GiB (medians over the rounds, warm pages) and writes ``--out`` (JSON) when given.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from e2e.ui import ENGINE_READY
from tests.support.files import random_file, sha256_file
from tests.support.live_server import LiveServer, settings_for
from tests.support.seaweed import start_seaweed
from wire.plan import MiB

from . import assets
from .harness import ENGINE, Chromium, Stack, browser, interleaved, measure_upload, median, pick
from .procs import TICKS, members, wait_until
from .run import RUNTIME, _interrupt, _size, copy_runtime

BASELINE = "baseline"  # our engine on the runtime and/or web files given with --baseline-runtime/--baseline-web
Key = tuple[str, str]  # (process kind, thread name)


def _kind(pid: int) -> str:
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "--type=" not in line:
        return "browser"
    kind = line.split("--type=", 1)[1].split()[0]
    if kind == "utility":
        sub = line.split("--utility-sub-type=", 1)[1].split()[0] if "--utility-sub-type=" in line else ""
        return sub.rsplit(".", 1)[-1] or kind
    return kind


def thread_cpu(root: int) -> dict[tuple[int, int], tuple[Key, float]]:
    """CPU seconds of every thread of the browser under ``root``, keyed by (pid, tid)."""
    out: dict[tuple[int, int], tuple[Key, float]] = {}
    for pid in members(root):
        kind = _kind(pid)
        try:
            tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            try:
                raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            out[(pid, tid)] = ((kind, name.rstrip("0123456789")), (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def delta(before: dict[tuple[int, int], tuple[Key, float]],
          after: dict[tuple[int, int], tuple[Key, float]]) -> dict[Key, float]:
    """CPU per (kind, thread name) between two readings (threads that ended meanwhile are not counted)."""
    sums: dict[Key, float] = defaultdict(float)
    for ident, (key, cpu) in after.items():
        sums[key] += cpu - before.get(ident, (key, 0.0))[1]
    return sums


def _app(contender: str) -> str:
    """The bench page a contender runs: the baseline is our engine, served from its own files."""
    return ENGINE if contender == BASELINE else contender


def _mark(marks: list[dict[tuple[int, int], tuple[Key, float]]], root: int) -> None:
    marks.append(thread_cpu(root))


def _completed(page: Page, count: int) -> bool:
    return bool(page.evaluate(f"window.__views.filter((v) => v.phase === 'completed').length >= {count}"))


def _same_worker(chromium: Chromium, server: LiveServer, tmp: Path, size: int, uploads: int,
                 warm: float) -> Iterator[tuple[dict[Key, float], float]]:
    """(CPU per thread, pick -> done MB/s) of each of ``uploads`` fresh files uploaded in one page, one by one."""
    root = chromium.procs.root
    page = chromium.new_page()
    page.goto(server.base_url + "/", wait_until="domcontentloaded")
    page.wait_for_selector(ENGINE_READY, timeout=120_000)
    time.sleep(warm)  # the page open a while before the first pick, as in the harness's warm runs
    for i in range(uploads):
        source = random_file(tmp / f"same-worker-{i}.bin", size)
        before, started = thread_cpu(root), time.monotonic()
        pick(page, ENGINE, source)
        wait_until(partial(_completed, page, i + 1), 900, f"upload {i + 1} to complete", interval=0.05)
        rate = size / 1e6 / (time.monotonic() - started)
        yield delta(before, thread_cpu(root)), rate
        source.unlink()
    page.close()


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # unwind on SIGTERM too: SeaweedFS, the server and Chromium stop
    parser = argparse.ArgumentParser(prog="python -m bench.threads", description=__doc__)
    parser.add_argument("--size", type=_size, default=256 * MiB)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--contenders", default=f"{ENGINE},raw-sha256")
    parser.add_argument("--warm", type=float, default=3.0, help="seconds the page is open before the pick")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--runtime", type=Path, default=RUNTIME, help="the built runtime of 'engine' (build/runtime)")
    parser.add_argument("--baseline-runtime", type=Path, default=None,
                        help=f"another built runtime (a copy of build/runtime before a change): contender "
                        f"'{BASELINE}' is the app on it, beside the others in the same run")
    parser.add_argument("--baseline-web", type=Path, default=None,
                        help=f"another version of web/ (the page, element and worker glue before a change): "
                        f"contender '{BASELINE}' serves it (with --baseline-runtime's runtime when given too)")
    parser.add_argument("--chromium-arg", action="append", default=[],
                        help="an extra Chromium switch for an experiment (repeatable), e.g. "
                        "--chromium-arg=--js-flags=--no-wasm-tier-up")
    parser.add_argument("--warmup", action="store_true",
                        help="each contender uploads once, unmeasured, before the rounds: the first upload in a "
                        "renderer pays V8's one-off work, which would otherwise fall on whoever goes first")
    parser.add_argument("--same-worker", action="store_true",
                        help="our engine only: --rounds uploads of fresh files one after another in one page and "
                        "worker, a column each (what the first upload in a worker pays that later ones do not)")
    args = parser.parse_args(argv)
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    baseline = args.baseline_runtime is not None or args.baseline_web is not None
    if baseline and BASELINE not in contenders:
        contenders.append(BASELINE)
    if args.same_worker:
        contenders = [f"upload {i + 1}" for i in range(args.rounds)]
    gib = args.size / 2**30
    samples: dict[str, list[dict[Key, float]]] = {c: [] for c in contenders}
    totals: dict[str, list[float]] = {c: [] for c in contenders}
    rates: dict[str, list[float]] = {c: [] for c in contenders}
    with tempfile.TemporaryDirectory(prefix="smartcat-threads-") as tmp_name:
        tmp = Path(tmp_name)
        source = random_file(tmp / "source.bin", args.size)
        digest = sha256_file(source)
        runtime_dir = copy_runtime(tmp / "runtime", args.runtime)
        assets.prepare()
        web = assets.web_dir(tmp / "web")
        seaweed = start_seaweed(tmp / "seaweedfs")
        server = LiveServer(settings_for(seaweed, tmp / "server", web_dir=web, runtime_dir=runtime_dir,
                                         part_size_bytes=8 * MiB, adaptive_part_size=False)).start()
        stack = Stack(seaweed, server, web, runtime_dir, 8 * MiB)
        servers = {c: server for c in contenders}
        if baseline:
            overrides: dict[str, Path] = {}
            if args.baseline_runtime is not None:
                overrides["runtime_dir"] = copy_runtime(tmp / "baseline", args.baseline_runtime)
            if args.baseline_web is not None:
                overrides["web_dir"] = assets.web_dir(tmp / "baseline-web", args.baseline_web)
            servers[BASELINE] = stack.server_for(tmp / "baseline-server", **overrides)
        try:
            extra = tuple(args.chromium_arg)
            with sync_playwright() as playwright, browser(playwright, tmp / "profile", extra) as chromium:
                if args.same_worker:
                    for column, (per, rate) in zip(contenders, _same_worker(chromium, server, tmp, args.size,
                                                                           args.rounds, args.warm), strict=True):
                        samples[column].append(per)
                        totals[column].append(sum(per.values()) / gib)
                        rates[column].append(rate)
                        print(f"{column}: {sum(per.values()) / gib:5.2f} CPU s/GiB, {rate:6.1f} MB/s pick->done",
                              flush=True)
                for contender in contenders if args.warmup and not args.same_worker else []:
                    chromium.close_pages()
                    measure_upload(chromium, stack, servers[contender], _app(contender), source, concurrency=4,
                                   warm_s=args.warm)
                    stack.take_object(servers[contender], args.size)
                for r, contender in [] if args.same_worker else interleaved(contenders, args.rounds):
                    chromium.close_pages()
                    root = chromium.procs.root
                    marks: list[dict[tuple[int, int], tuple[Key, float]]] = []
                    run = measure_upload(chromium, stack, servers[contender], _app(contender), source, concurrency=4,
                                         warm_s=args.warm, on_pick=partial(_mark, marks, root))
                    per = delta(marks[0], thread_cpu(root))
                    stack.take_object(servers[contender], args.size, digest if r == 0 else None)
                    samples[contender].append(per)
                    totals[contender].append(sum(per.values()) / gib)
                    rates[contender].append(run.throughput_mbps)
                    print(f"round {r + 1} {contender:>10}: {sum(per.values()) / gib:5.2f} CPU s/GiB "
                          f"(harness {run.cpu_s_per_gib:5.2f}), {run.throughput_mbps:6.1f} MB/s", flush=True)
        finally:
            stack.stop()
            seaweed.stop()
    keys = sorted({k for runs in samples.values() for per in runs for k in per})
    table: dict[str, dict[str, float]] = {}
    for key in keys:
        row = {c: round(median([per.get(key, 0.0) / gib for per in samples[c]]) or 0.0, 2) for c in contenders}
        if max(row.values()) >= 0.05:
            table[f"{key[0]}/{key[1]}"] = row
    print(f"{'CPU s/GiB':<44}" + "".join(f"{c:>12}" for c in contenders))
    for name, row in sorted(table.items(), key=lambda kv: -max(kv[1].values())):
        print(f"{name:<44}" + "".join(f"{row[c]:12.2f}" for c in contenders))
    print(f"{'total':<44}" + "".join(f"{median(totals[c]) or 0:12.2f}" for c in contenders))
    print(f"{'MB/s':<44}" + "".join(f"{median(rates[c]) or 0:12.1f}" for c in contenders))
    if args.out is not None:
        result: dict[str, Any] = {"size": args.size, "rounds": args.rounds, "threads": table,
                                  "total": {c: median(totals[c]) for c in contenders},
                                  "throughput_mbps": {c: median(rates[c]) for c in contenders}}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
