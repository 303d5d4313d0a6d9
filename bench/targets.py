"""Issue 17's targets, each judged in every profile where it applies, from one ``make bench`` run.

A profile is the loopback run (``latest.json``) or one link run beside it (``link-<rate>.json``). A row whose figure
is missing says why: the scenario failed (its error's last line), or it was not part of that profile's run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

LOOPBACK = "loopback"
#: The rate the issue names for "engine ready ≤ 2 s".
READY_RATE = "50mbit"
UPPYS = ("uppy5", "uppy6")
FIRST_VISIT_MB = 7.0
READY_MS = 2000.0
CPU_RATIO = 1.3
THROUGHPUT_VS_SHA = 0.9
THROUGHPUT_VS_UPPY = 0.8
THROUGHPUT_LIMITED_VS_RAW = 0.98
GROWTH_MB = 50.0
HEAP_FLAT_MB = 1.0  # the wasm heap grows in 64 KiB pages and never shrinks: "flat" is no growth past noise
SAVED_MBPS = 250.0
SAVED_SIZE = 1 << 30
WARM_FIRST_BYTE_MS = 150.0


def _bits(rate: str) -> float:
    """``20mbit`` -> 20e6, for ordering profiles by speed."""
    found = re.match(r"^([0-9]+)(k|m|g)?bit$", rate)
    if not found:
        return float("inf")
    return int(found[1]) * {"k": 1e3, "m": 1e6, "g": 1e9, None: 1.0}[found[2]]


def profiles(data: dict[str, Any], links: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The loopback run, then the link runs from the slowest link up; a profile the run asked for that wrote no
    results is there too, saying so."""
    asked = {rate: ["ready", "throughput"] for rate in (data.get("settings") or {}).get("links", [])}
    asked |= {rate: ["ready"] for rate in (data.get("settings") or {}).get("ready_links", [])}
    missing = {rate: {"link": {"rate": rate}, "settings": {"scenarios": scenarios},
                      "errors": {name: "its run wrote no results"
                                 for name in scenarios}}
               for rate, scenarios in asked.items() if rate not in links}
    return {LOOPBACK: data, **dict(sorted((links | missing).items(), key=lambda kv: _bits(kv[0])))}


def ran(run: dict[str, Any], scenario: str) -> bool:
    """Whether the run was asked for ``scenario`` (older runs lack the list: judged by their data)."""
    asked = (run.get("settings") or {}).get("scenarios")
    if asked is not None:
        return scenario in asked
    key = {"throughput": "contenders", "ready": "worker_ready"}.get(scenario, scenario)
    return key in run or scenario in (run.get("errors") or {})


def _why(run: dict[str, Any], scenario: str) -> str:
    error = (run.get("errors") or {}).get(scenario)
    if error:
        return f"not measured: {scenario} failed ({error.strip().splitlines()[-1][:160]})"
    if not ran(run, scenario):
        return f"not measured: no {scenario} scenario in this profile's run"
    return "not measured"


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def first_visit(run: dict[str, Any]) -> dict[str, Any]:
    """The snapshot first-visit summary of a run's worker-ready scenario ({} when absent)."""
    return ((run.get("worker_ready") or {}).get("snapshot_first_visit")) or {}


def memory_growth(data: dict[str, Any]) -> dict[str, Any] | None:
    """Peak growth from the smallest to the largest file: the engine's heap and renderer, and the controls'
    renderer."""
    mem = data.get("memory") or {}

    def ends(contender: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        runs = sorted((m for m in mem.values() if m.get("contender", "engine") == contender), key=lambda m: m["size"])
        return (runs[0], runs[-1]) if len(runs) >= 2 else None

    engine = ends("engine")
    if engine is None:
        return None
    small, large = engine
    out: dict[str, Any] = {
        "small_mib": small["size"] >> 20,
        "large_mib": large["size"] >> 20,
        "renderer_growth_mb": round(large["renderer_peak_mb"] - small["renderer_peak_mb"], 1),
        "heap_growth_mb": round((large["heap_mb"] or 0) - (small["heap_mb"] or 0), 1),
    }
    for control in ("raw", "raw-sha256"):
        ends_of = ends(control)
        if ends_of is not None:
            key = control.replace("-", "_")
            out[f"{key}_renderer_growth_mb"] = round(ends_of[1]["renderer_peak_mb"] - ends_of[0]["renderer_peak_mb"], 1)
    return out


def issue17(data: dict[str, Any], links: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every target of issue 17 in every profile where it applies: rows of profile, target, goal, value (the
    figure judged), text (the figure with what it came from), met (None: not measured, the text says why)."""
    rows: list[dict[str, Any]] = []

    def add(profile: str, target: str, goal: str, value: float | None, text: str, judge: Callable[[float], bool],
            why: str) -> None:
        met = None if value is None else judge(value)
        rows.append({"profile": profile, "target": target, "goal": goal, "value": value,
                     "text": text if value is not None else why, "met": met})

    for profile, run in profiles(data, links).items():
        limited = profile != LOOPBACK
        if not limited or ran(run, "throughput"):
            c = run.get("contenders") or {}
            why = _why(run, "throughput")
            cpu = {name: v.get("cpu_s_per_gib") for name, v in c.items()}
            mbps = {name: v.get("throughput_mbps") for name, v in c.items()}
            ratio = _ratio(cpu.get("engine"), cpu.get("raw-sha256"))
            add(profile, "CPU per GiB vs raw + SHA-256", f"≤ {CPU_RATIO}x", ratio,
                f"{ratio}x ({cpu.get('engine')} / {cpu.get('raw-sha256')} CPU s/GiB)", lambda v: v <= CPU_RATIO, why)
            if limited:
                ratio = _ratio(mbps.get("engine"), mbps.get("raw"))
                add(profile, "throughput vs raw", f"≥ {THROUGHPUT_LIMITED_VS_RAW}x", ratio,
                    f"{ratio}x ({mbps.get('engine')} / {mbps.get('raw')} MB/s)",
                    lambda v: v >= THROUGHPUT_LIMITED_VS_RAW, why)
            else:
                ratio = _ratio(mbps.get("engine"), mbps.get("raw-sha256"))
                add(profile, "throughput vs raw + SHA-256", f"≥ {THROUGHPUT_VS_SHA}x", ratio,
                    f"{ratio}x ({mbps.get('engine')} / {mbps.get('raw-sha256')} MB/s)",
                    lambda v: v >= THROUGHPUT_VS_SHA, why)
                uppy = max(((mbps[u], u) for u in UPPYS if mbps.get(u)), default=(None, None))
                ratio = _ratio(mbps.get("engine"), uppy[0])
                add(profile, "throughput vs the faster Uppy", f"≥ {THROUGHPUT_VS_UPPY}x", ratio,
                    f"{ratio}x ({mbps.get('engine')} / {uppy[0]} MB/s, {uppy[1]})",
                    lambda v: v >= THROUGHPUT_VS_UPPY, why)
            warm = ((c.get("engine") or {}).get("ttfb_ms") or {}).get("warm")
            add(profile, "pick → first byte, warm (page open 10 s)", f"≤ {WARM_FIRST_BYTE_MS:.0f} ms", warm,
                f"{warm or 0:,.0f} ms", lambda v: v <= WARM_FIRST_BYTE_MS, why)
        if profile == LOOPBACK:
            visit = first_visit(run)
            add(profile, "first visit over the wire", f"≤ {FIRST_VISIT_MB:.0f} MB", visit.get("wire_mb"),
                f"{visit.get('wire_mb')} MB", lambda v: v <= FIRST_VISIT_MB, _why(run, "ready"))
            _memory_rows(run, add)
            _saved_row(run, add)
    ready_run = profiles(data, links).get(READY_RATE)
    visit = first_visit(ready_run or {})
    ready = visit.get("page_open_to_ready_ms")
    failed = visit.get("failed") or []
    add(READY_RATE, "engine ready on a first visit (page open → ready)", f"≤ {READY_MS / 1000:.0f} s", ready,
        f"{ready or 0:,.0f} ms (worker start → ready {visit.get('worker_ready_ms') or 0:,.0f} ms; "
        f"{visit.get('wire_mb')} MB; samples "
        f"{visit.get('page_open_samples_ms', visit.get('samples_ms'))}"
        + (f"; {len(failed)} failed: {failed[0]}" if failed else "") + ")",
        lambda v: v <= READY_MS,
        _why(ready_run, "ready") + (f"; {failed[0]}" if failed else "") if ready_run is not None
        else f"not measured: no {READY_RATE} run")
    return rows


def _memory_rows(run: dict[str, Any], add: Callable[..., None]) -> None:
    growth = memory_growth(run)
    why = _why(run, "memory")
    sizes = f"{growth['large_mib']} MiB vs {growth['small_mib']} MiB" if growth else "4 GiB vs 64 MiB"
    renderer = growth["renderer_growth_mb"] if growth else None
    controls = ", ".join(f"{k.removesuffix('_renderer_growth_mb').replace('_', '-')} {v:+} MB"
                         for k, v in (growth or {}).items()
                         if k.endswith("_renderer_growth_mb") and not k.startswith("renderer"))
    add(LOOPBACK, f"renderer peak, {sizes}", f"≤ +{GROWTH_MB:.0f} MB", renderer,
        f"{renderer:+} MB" + (f" (controls: {controls})" if controls else "") if renderer is not None else "",
        lambda v: v <= GROWTH_MB, why)
    heap = growth["heap_growth_mb"] if growth else None
    add(LOOPBACK, f"Pyodide heap flat, {sizes}", f"≤ +{HEAP_FLAT_MB:.0f} MB", heap,
        f"{heap:+} MB" if heap is not None else "", lambda v: v <= HEAP_FLAT_MB, why)


def _saved_row(run: dict[str, Any], add: Callable[..., None]) -> None:
    saved = run.get("saved") or {}
    modes = {mode: saved[mode]["mbps"] for mode in ("cold", "warm") if (saved.get(mode) or {}).get("mbps")}
    size = saved.get("size", SAVED_SIZE)
    worst = min(modes.values()) if len(modes) == 2 else None
    add(LOOPBACK, f"pick → saved in the browser, {size >> 20} MiB", f"≥ {SAVED_MBPS:.0f} MB/s (cold and warm)",
        worst, " / ".join(f"{m} {v:,.0f} MB/s ({saved[m]['median_ms']:,.0f} ms)" for m, v in modes.items()),
        lambda v: v >= SAVED_MBPS, _why(run, "saved"))
