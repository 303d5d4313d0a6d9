"""The benchmark's scenarios, each returning plain JSON-able data for ``latest.json``."""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from playwright.sync_api import Playwright

from browser_py.adapters.cpython import upload_file
from browser_py.engine.upload import EngineConfig
from tests.support.files import sha256_file
from tests.support.live_server import LiveServer
from tests.support.s3_proxy import ProxyState, s3_proxy

from .harness import (
    ENGINE,
    Chromium,
    Progress,
    Stack,
    Upload,
    browser,
    engine_ready,
    interleaved,
    measure_upload,
    median,
    open_contender,
    pick,
    wait_done,
)
from .procs import wait_until

WARM_S = 10.0  # "the page has been open 10 s" before the pick


def upload_timeout_s(size: int, floor_mb_per_s: float = 1.0) -> float:
    """How long one upload may take before it counts as failed: generous (``floor_mb_per_s`` after 2 minutes; the
    slowest link profile moves ~1.2 MB/s, loopback 4-15 MB/s on a starved machine), yet a hang costs minutes, not
    the run."""
    return 120 + size / (floor_mb_per_s * 1e6)


def throughput_rounds(
    chromium: Chromium, stack: Stack, contenders: Sequence[str], source: Path, source_sha256: str, *,
    rounds: int, concurrency: int, say: Progress,
) -> tuple[list[Upload], list[str]]:
    """Every contender, every round, once cold (picked as soon as the page can take it) and once warm (10 s). An
    upload that fails or hangs is listed with its reason (the second list) and the others still run."""
    runs: list[Upload] = []
    failures: list[str] = []
    checked: set[str] = set()
    for r, contender in interleaved(contenders, rounds):
        for warm in (0.0, WARM_S):
            chromium.restart()  # no worker running: the previous run's would otherwise take this upload
            verify = contender not in checked
            try:
                run = measure_upload(chromium, stack, stack.server, contender, source, concurrency=concurrency,
                                     warm_s=warm, timeout_s=upload_timeout_s(source.stat().st_size))
                stack.take_object(stack.server, run.size, source_sha256 if verify else None)
            except Exception as error:  # one contender's failed upload is its result, not the scenario's end
                mode = "warm" if warm else "cold"
                first = (str(error).strip().splitlines() or [""])[0][:200]
                failures.append(f"round {r + 1} {contender} {mode}: {type(error).__name__}: {first}")
                say(f"round {r + 1} {contender:>10} {mode}: FAILED ({failures[-1]})")
                stack.discard(stack.server)
                continue
            checked.add(contender)
            runs.append(run)
            say(f"round {r + 1} {contender:>10} {run.mode}: {run.throughput_mbps:6.1f} MB/s, "
                f"pick->first byte {run.pick_to_first_byte_ms:7.0f} ms, cpu {run.cpu_s_per_gib:5.2f} s/GiB, "
                f"renderers {run.renderer_peak_mb:6.0f} MB" + (", sha256 ok" if verify else ""))
    return runs, failures


def summarize(runs: Sequence[Upload], contenders: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Medians per contender (throughput over every run; first byte per mode)."""
    out: dict[str, dict[str, Any]] = {}
    for contender in contenders:
        mine = [r for r in runs if r.contender == contender]
        if not mine:
            continue
        cold = [r for r in mine if r.mode == "cold"]
        warm = [r for r in mine if r.mode == "warm"]
        out[contender] = {
            "runs": len(mine),
            # Two decimals: at 20mbit every contender moves ~1.2 MB/s, and the target is a ratio of 0.98.
            "throughput_mbps": _round(median([r.throughput_mbps for r in mine]), 2),
            "throughput_mbps_min": _round(min(r.throughput_mbps for r in mine), 2),
            "throughput_mbps_max": _round(max(r.throughput_mbps for r in mine), 2),
            "pick_to_done_mbps": _round(median([r.size / 1e3 / r.pick_to_done_ms for r in mine])),
            "ttfb_ms": {"cold": _round(median([r.pick_to_first_byte_ms for r in cold])),
                        "warm": _round(median([r.pick_to_first_byte_ms for r in warm]))},
            "safe_to_leave_ms": _round(median([r.safe_to_leave_ms for r in mine])),
            "stage_ms": _round(median([r.stage_ms for r in mine])),
            "cpu_s_per_gib": _round(median([r.cpu_s_per_gib for r in mine]), 2),
            "transfer_cpu_s_per_gib": _round(median([r.transfer_cpu_s_per_gib for r in mine]), 2),
            "renderer_peak_mb": _round(median([r.renderer_peak_mb for r in mine])),
            "heap_mb": _round(median([r.heap_mb for r in mine])),
            "mean_in_flight": _round(median([r.mean_in_flight for r in mine]), 2),
            "worker_ready_ms": _round(median([r.worker_ready_ms for r in cold])),
        }
    return out


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def worker_ready(
    playwright: Playwright, stack: Stack, plain_server: LiveServer | None, tmp: Path, *, rounds: int, say: Progress,
    timeout_s: float = 60,
) -> dict[str, Any]:
    """Worker start -> ready, with no worker running: from the snapshot with the browser's cache warm (a returning
    user), on a first visit (empty profile), and plainly (a runtime built without a snapshot; left out when
    ``plain_server`` is None). A sample that fails (a boot slower than ``timeout_s``, the wrong boot path) is recorded
    with its reason under ``failed`` and the others still run."""
    kinds = ["snapshot_first_visit", "snapshot_cached", *(["plain_cached"] if plain_server else [])]
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    failed: dict[str, list[str]] = {kind: [] for kind in kinds}

    def sample(kind: str, r: int, chromium: Chromium, server: LiveServer, keep: bool = True) -> bool:
        try:
            value = engine_ready(chromium, server, timeout_s=timeout_s)
            expected = "plain" if kind.startswith("plain") else "snapshot"
            if value["mode"] != expected:
                raise AssertionError(f"booted {value['mode']}, not {expected} ({value['fallback']})")
        except Exception as error:  # any failure of one sample is that sample's result
            first = (str(error).strip().splitlines() or [""])[0][:200]
            failed[kind].append(f"round {r + 1}: {type(error).__name__}: {first}")
            seen[kind] = f"FAILED ({failed[kind][-1]})"
            return False
        finally:
            chromium.close_pages()
        if keep:
            samples[kind].append(value)
            seen[kind] = f"{value['worker_ready_ms']} ms"
        return True

    for r in range(rounds):
        seen: dict[str, str] = {}
        with browser(playwright, tmp / f"ready-{r}") as chromium:
            sample("snapshot_first_visit", r, chromium, stack.server)
            # Fill the plain runtime's cache on this profile, then measure it below as a returning visit.
            plain_filled = plain_server is not None and sample("plain_cached", r, chromium, plain_server, keep=False)
        # A new browser on the same profile (its HTTP cache): workers outlive closed pages (extendedLifetime), so a
        # second page in the same browser would find the first visit's worker still running.
        with browser(playwright, tmp / f"ready-{r}") as chromium:
            sample("snapshot_cached", r, chromium, stack.server)
            if plain_server is not None and plain_filled:
                sample("plain_cached", r, chromium, plain_server)
        shutil.rmtree(tmp / f"ready-{r}", ignore_errors=True)
        say(f"worker ready, round {r + 1}: " + ", ".join(f"{kind} {outcome}" for kind, outcome in seen.items()))
    return {kind: _ready_summary(samples[kind], failed[kind]) for kind in kinds}


def _ready_summary(values: list[dict[str, Any]], failed: list[str]) -> dict[str, Any]:
    """Medians of one kind of worker-ready sample, and the samples that failed."""
    last = values[-1] if values else {}
    return {
        "worker_ready_ms": _round(median([v["worker_ready_ms"] for v in values])),
        "page_open_to_ready_ms": _round(median([v["page_open_to_ready_ms"] for v in values])),
        "python_ms": _round(median([v["python_ms"] for v in values])),
        "wire_mb": _round(median([v["wire_bytes"] / 1e6 for v in values]), 2),
        "wire_mb_by_file_last": {k: round(b / 1e6, 3) for k, b in last.get("wire_bytes_by_file", {}).items()},
        "samples_ms": [v["worker_ready_ms"] for v in values],
        "page_open_samples_ms": [v["page_open_to_ready_ms"] for v in values],
        "load_average": [v["load_average"] for v in values],
        "phases_last": last.get("phases"),
        "failed": failed,
    }


def resume(
    playwright: Playwright, stack: Stack, contenders: Sequence[str], source: Path, tmp: Path, *,
    concurrency: int, rate: float, say: Progress,
) -> dict[str, dict[str, Any]]:
    """Quit the browser a third of the way in (for our engine, also once it says the file is saved in the browser:
    leaving earlier loses the copy), start it again and open the page: bytes sent again, and page open -> first
    resumed byte.

    PUTs go through the recording proxy (tests/support/s3_proxy.py), throttled to ``rate`` until the close so the
    close lands mid-upload. Our engine resumes by itself; the peers keep nothing across a closed tab, so the file is
    picked again at once on the reopened page (the most favourable case for them) and starts over.
    """
    size = source.stat().st_size
    results: dict[str, dict[str, Any]] = {}
    with s3_proxy(stack.seaweed.endpoint_url) as proxy:
        server = stack.server_for(tmp / "resume-server", s3_public_endpoint_url=proxy.url)
        part_count = -(-size // stack.part_size)
        for contender in contenders:
            profile = tmp / f"resume-{contender}"
            state = proxy.state
            start_index = len(state.snapshot())
            state.rate_bytes_per_s = rate
            with browser(playwright, profile) as chromium:
                page = open_contender(chromium, stack, server, contender, concurrency, s3_endpoint=proxy.url)
                if contender == ENGINE:
                    page.wait_for_selector('#engine[data-state="ready"]', timeout=60_000)
                pick(page, contender, source)

                wait_until(partial(_confirmed_since, state, start_index, part_count // 3), 300,
                           f"{contender}: a third of the parts on S3")
                if contender == ENGINE:  # closing before the copy is saved would lose it: the app says so
                    wait_until(partial(page.evaluate, "window.__views.some((v) => v.saved)"), 300,
                               f"{contender}: the file saved in the browser", interval=0.1)
            # The browser quit, not only its tabs: the app's worker outlives its last page by minutes
            # (extendedLifetime) and would finish the upload with no page open, leaving nothing to resume.
            wait_until(state.settled, 60, "the proxy to finish the closed browser's requests")
            before = state.snapshot()[start_index:]
            confirmed_before = {p.part_number for p in before if p.status == 200}
            attempted_before = {p.part_number for p in before}
            state.rate_bytes_per_s = None
            reopen_index = len(state.snapshot())
            with browser(playwright, profile) as chromium:
                opened = time.time()
                page = open_contender(chromium, stack, server, contender, concurrency, s3_endpoint=proxy.url)
                if contender != ENGINE:
                    pick(page, contender, source)  # peers need the file again: picked at once
                wait_until(partial(_confirmed_since, state, reopen_index, 0, any_status=True), 120,
                           f"{contender}: a resumed PUT")
                first = state.snapshot()[reopen_index].started
                wait_done(page, contender, 900)
            wait_until(state.settled, 60, "the proxy to settle")
            after = [p for p in state.snapshot()[reopen_index:] if p.status == 200]
            resent = [p for p in after if p.part_number in attempted_before]
            results[contender] = {
                "parts": part_count,
                "parts_confirmed_at_close": len(confirmed_before),
                "parts_in_flight_at_close": len(attempted_before - confirmed_before),
                "resend_bytes": sum(p.received for p in resent),
                "resend_confirmed_bytes": sum(p.received for p in resent if p.part_number in confirmed_before),
                "resume_ms": round((first - opened) * 1000, 1),
                "needs_repick": contender != ENGINE,
            }
            stack.take_object(server, size)
            say(f"resume {contender:>10}: re-sent {results[contender]['resend_bytes'] / 2**20:6.1f} MiB, "
                f"page open -> first resumed byte {results[contender]['resume_ms']:6.0f} ms")
            shutil.rmtree(profile, ignore_errors=True)
    return results


def _confirmed_since(state: ProxyState, begin: int, at_least: int, any_status: bool = False) -> bool:
    """More than ``at_least`` part PUTs recorded since index ``begin`` (only those S3 accepted, unless any)."""
    return len([p for p in state.snapshot()[begin:] if any_status or p.status == 200]) > at_least


def sweep(
    chromium: Chromium, stack: Stack, source: Path, tmp: Path, *, part_sizes: Sequence[int],
    concurrencies: Sequence[int], engine_concurrency: int, reps: int, say: Progress,
) -> dict[str, Any]:
    """Raw fetch PUTs over part size x concurrency (what this browser + store can do), and our engine over part size
    (its concurrency is its own setting). ``reps`` runs per cell, all cells shuffled the same way each repetition."""
    size = source.stat().st_size
    servers = {ps: stack.server_for(tmp / f"sweep-{ps >> 20}mib", part_size_bytes=ps) for ps in part_sizes}
    cells: list[tuple[str, int, int]] = [("raw", ps, c) for ps in part_sizes for c in concurrencies]
    cells += [(ENGINE, ps, engine_concurrency) for ps in part_sizes]
    stride = next(k for k in (7, 5, 3, 1) if len(cells) % k)  # a fixed shuffle: neighbours are unlike cells
    order = [cells[(i * stride) % len(cells)] for i in range(len(cells))]
    samples: dict[tuple[str, int, int], list[Upload]] = {cell: [] for cell in cells}
    original = stack.part_size
    try:
        for rep in range(reps):
            for cell in order if rep % 2 == 0 else order[::-1]:
                contender, ps, conc = cell
                stack.part_size = ps
                chromium.close_pages()
                run = measure_upload(chromium, stack, servers[ps], contender, source, concurrency=conc, warm_s=0.0)
                stack.take_object(servers[ps], size)
                samples[cell].append(run)
                say(f"sweep {contender:>6} {ps >> 20:3d} MiB x {conc}: {run.throughput_mbps:6.1f} MB/s")
    finally:
        stack.part_size = original
    results = [
        {"contender": c, "part_mib": ps >> 20, "concurrency": conc,
         "throughput_mbps": _round(median([r.throughput_mbps for r in runs])),
         "samples_mbps": [round(r.throughput_mbps, 1) for r in runs],
         "cpu_s_per_gib": _round(median([r.cpu_s_per_gib for r in runs]), 2),
         "mean_in_flight": _round(median([r.mean_in_flight for r in runs]), 2)}
        for (c, ps, conc), runs in samples.items()
    ]
    best = max((r for r in results if r["contender"] == "raw"), key=lambda r: r["throughput_mbps"] or 0)
    return {"file_size": size, "reps": reps, "cells": results, "best_raw": best}


def memory(
    chromium: Chromium, stack: Stack, sources: Sequence[Path], *, contenders: Sequence[str], concurrency: int,
    say: Progress,
) -> dict[str, Any]:
    """Our engine's memory at very different file sizes (Pyodide's heap, the renderer processes' peak RSS), with the
    raw loops as controls: growth that raw + SHA-256 shows too comes from hashing in the browser (WebCrypto needs
    each part as an ArrayBuffer, garbage until V8 collects it), not from the engine's own state."""
    out: dict[str, Any] = {}
    for source in sources:
        for contender in contenders:
            chromium.close_pages()
            run = measure_upload(chromium, stack, stack.server, contender, source, concurrency=concurrency,
                                 warm_s=0.0, timeout_s=1800)
            stack.take_object(stack.server, run.size)
            label = f"{contender} {run.size >> 20}MiB"
            out[label] = {"contender": contender, "size": run.size, "heap_mb": run.heap_mb,
                          "renderer_peak_mb": run.renderer_peak_mb, "throughput_mbps": round(run.throughput_mbps, 1)}
            say(f"memory {label:>14}: heap {run.heap_mb} MB, renderer peak {run.renderer_peak_mb} MB")
    return out


def saved(
    chromium: Chromium, stack: Stack, server: LiveServer, source: Path, *, rounds: int, concurrency: int,
    say: Progress,
) -> dict[str, Any]:
    """Pick -> saved: how long a picked file is at risk (closing every tab before the browser's copy completes means
    choosing the file again), cold (picked as the page opens) and warm (the page open 10 s), while the upload runs
    as usual to the end; the object's SHA-256 is checked every time."""
    size = source.stat().st_size
    digest = sha256_file(source)
    runs: dict[str, list[Upload]] = {"cold": [], "warm": []}
    for _ in range(rounds):
        for warm in (0.0, WARM_S):
            chromium.restart()
            run = measure_upload(chromium, stack, server, ENGINE, source, concurrency=concurrency, warm_s=warm,
                                 timeout_s=upload_timeout_s(size, floor_mb_per_s=4))  # loopback only
            stack.take_object(server, size, digest)
            assert run.stage_ms is not None, "the card never said the file was saved"
            runs[run.mode].append(run)
            say(f"saved {size >> 20} MiB {run.mode}: pick -> saved {run.stage_ms:7.0f} ms "
                f"({size / 1e3 / run.stage_ms:5.0f} MB/s), pick -> done {run.pick_to_done_ms:7.0f} ms")
    out: dict[str, Any] = {"size": size}
    for mode, values in runs.items():
        ms = median([r.stage_ms for r in values])
        out[mode] = {"median_ms": ms, "mbps": _round(size / 1e3 / ms) if ms else None,
                     "runs_ms": [r.stage_ms for r in values],
                     "done_median_ms": median([r.pick_to_done_ms for r in values])}
    return out


def cpython_vs_boto3(
    stack: Stack, source: Path, tmp: Path, *, rounds: int, concurrency: int, say: Progress
) -> dict[str, Any]:
    """Our engine's CPython adapter (httpx) against boto3's managed ``upload_file``: same file, part size and
    concurrency, straight to the store, interleaved. CPU is this process's (both run in it)."""
    from boto3.s3.transfer import TransferConfig

    size = source.stat().st_size
    server = stack.server
    bucket = server.settings.s3_bucket
    transfer = TransferConfig(multipart_threshold=stack.part_size, multipart_chunksize=stack.part_size,
                              max_concurrency=concurrency, use_threads=True)
    samples: dict[str, list[tuple[float, float]]] = {"cpython_engine": [], "boto3_upload_file": []}

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    for r, who in interleaved(list(samples), rounds):
        t0, c0 = time.perf_counter(), cpu()
        if who == "cpython_engine":
            state = tmp / f"cpython-state-{r}"
            result = asyncio.run(upload_file(source, server.base_url, state,
                                             config=EngineConfig(concurrency=concurrency)))
            assert result.ok, result.view
        else:
            stack.s3.upload_file(str(source), bucket, f"boto3/{r}.bin", Config=transfer)
        elapsed, used = time.perf_counter() - t0, cpu() - c0
        stack.take_object(server, size)
        samples[who].append((elapsed, used))
        say(f"round {r + 1} {who:>17}: {size / 1e6 / elapsed:6.1f} MB/s, cpu {used / (size / 2**30):5.2f} s/GiB")
    out: dict[str, Any] = {}
    for who, values in samples.items():
        out[who] = {
            "throughput_mbps": _round(median([size / 1e6 / e for e, _ in values])),
            "cpu_s_per_gib": _round(median([u / (size / 2**30) for _, u in values]), 2),
        }
    engine, boto = out["cpython_engine"]["throughput_mbps"], out["boto3_upload_file"]["throughput_mbps"]
    out["ratio_engine_vs_boto3"] = round(engine / boto, 3) if engine and boto else None
    return out


def dump(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
