"""The benchmark's judgement of issue 17's targets: every target in every profile where it applies, from a loopback
run and the link runs beside it, with the reason when a figure is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report


def _contender(mbps: float, cpu: float, warm_ms: float) -> dict[str, Any]:
    return {"throughput_mbps": mbps, "throughput_mbps_min": mbps, "throughput_mbps_max": mbps, "mean_in_flight": 4.0,
            "pick_to_done_mbps": mbps, "ttfb_ms": {"cold": warm_ms * 2, "warm": warm_ms}, "safe_to_leave_ms": 1000.0,
            "cpu_s_per_gib": cpu, "transfer_cpu_s_per_gib": cpu, "renderer_peak_mb": 300.0, "heap_mb": None}


def _run(started: str, contenders: dict[str, dict[str, Any]], scenarios: list[str], **extra: Any) -> dict[str, Any]:
    return {"generated_at": started, "command": "make bench",
            "machine": {"cpus": 2, "cpu_model": "x", "chromium": "Chromium 156", "seaweedfs": "4.48",
                        "load_average_at_start": [1.0, 1.0, 1.0]},
            "settings": {"file_size": 32 << 20, "part_size": 8 << 20, "concurrency": 4, "rounds": 1,
                         "scenarios": scenarios},
            "contenders": contenders, **extra}


def _visit(page_open_ms: float | None, wire_mb: float, failed: list[str] | None = None) -> dict[str, Any]:
    return {"snapshot_first_visit": {"page_open_to_ready_ms": page_open_ms, "worker_ready_ms": page_open_ms,
                                     "wire_mb": wire_mb, "samples_ms": [], "failed": failed or []}}


def _memory(size: int, renderer_mb: float, heap_mb: float) -> dict[str, Any]:
    return {"contender": "engine", "size": size, "renderer_peak_mb": renderer_mb, "heap_mb": heap_mb}


def test_every_issue17_target_is_judged_per_profile_and_a_missing_figure_says_why(tmp_path: Path) -> None:
    loopback = _run(
        "2026-12-02T08:10:00+00:00",
        {"engine": _contender(90, 12.0, 120), "raw": _contender(110, 5, 20), "raw-sha256": _contender(100, 10, 90),
         "uppy5": _contender(120, 6, 30), "uppy6": _contender(110, 6, 20)},
        ["ready", "throughput", "memory", "saved"],
        worker_ready=_visit(900, 6.95),
        memory={"a": _memory(64 << 20, 300, 32), "b": _memory(4 << 30, 340, 32)},
        saved={"size": 1 << 30, "cold": {"mbps": 240.0, "median_ms": 4474, "runs_ms": [4474]},
               "warm": {"mbps": 300.0, "median_ms": 3579, "runs_ms": [3579]}},
        errors={},
    )
    out = tmp_path / "latest.json"
    out.write_text(json.dumps(loopback))
    limited = _run("2026-12-02T08:30:00+00:00",
                   {"engine": _contender(5.8, 40, 140), "raw": _contender(5.9, 20, 30),
                    "raw-sha256": _contender(5.9, 30, 100)},
                   ["ready", "throughput"], link={"rate": "20mbit", "mtu": 1500}, worker_ready=_visit(4000, 6.95))
    ready_only = _run("2026-12-02T08:40:00+00:00", {}, ["ready"], link={"rate": "50mbit", "mtu": 1500},
                      worker_ready=_visit(1900, 6.95, ["round 2: AssertionError: the worker did not answer"]),
                      errors={})
    older = _run("2026-11-21T11:00:00+00:00", {}, ["ready"], link={"rate": "100mbit", "mtu": 1500})
    for run in (limited, ready_only, older):
        (tmp_path / f"link-{run['link']['rate']}.json").write_text(json.dumps(run))

    page = tmp_path / "BENCHMARKS.md"
    page.write_text(f"# Benchmarks\n\n{report.BEGIN}\nold\n{report.END}\n\n## History kept\n")
    data = report.finish(out, page, chart_path=None)

    verdicts = {(t["profile"], t["target"]): t["met"] for t in data["issue17_targets"]}
    assert verdicts == {
        ("loopback", "CPU per GiB vs raw + SHA-256"): True,  # 1.2x
        ("loopback", "throughput vs raw + SHA-256"): True,  # 0.9x
        ("loopback", "throughput vs the faster Uppy"): False,  # 0.75x of Uppy 5
        ("loopback", "pick → first byte, warm (page open 10 s)"): True,
        ("loopback", "first visit over the wire"): True,
        ("loopback", "renderer peak, 4096 MiB vs 64 MiB"): True,  # +40 MB
        ("loopback", "Pyodide heap flat, 4096 MiB vs 64 MiB"): True,
        ("loopback", "pick → saved in the browser, 1024 MiB"): False,  # cold 240 MB/s
        ("20mbit", "CPU per GiB vs raw + SHA-256"): False,  # 1.33x
        ("20mbit", "throughput vs raw"): True,  # 5.8 / 5.9 = 0.983x
        ("20mbit", "pick → first byte, warm (page open 10 s)"): True,
        ("50mbit", "engine ready on a first visit (page open → ready)"): True,
    }
    assert "100mbit" not in {t["profile"] for t in data["issue17_targets"]}, "an older link run judged as this one"

    text = page.read_text()
    assert text.endswith("## History kept\n") and "\nold\n" not in text
    assert "| 20mbit (tbf, MTU 1500) | throughput vs raw | ≥ 0.98x | 0.983x (5.8 / 5.9 MB/s) | met |" in text
    assert "1 failed: round 2: AssertionError: the worker did not answer" in text


def test_a_target_whose_scenario_failed_or_did_not_run_says_so(tmp_path: Path) -> None:
    run = _run("2026-12-02T08:10:00+00:00", {}, ["throughput", "memory"],
               errors={"throughput": "Traceback ...\nAssertionError: uppy5 failed: boom\n",
                       "memory": "Traceback ...\nTimeoutError: engine to finish\n"})
    run["settings"]["links"] = ["20mbit"]  # asked for, but its run wrote nothing
    report.derive(run, {})
    why = {t["target"]: t["text"] for t in run["issue17_targets"] if t["met"] is None and t["profile"] == "loopback"}
    limited = {t["target"]: t["text"] for t in run["issue17_targets"] if t["profile"] == "20mbit"}
    assert limited["throughput vs raw"] == "not measured: throughput failed (its run wrote no results)"
    assert why["CPU per GiB vs raw + SHA-256"] == "not measured: throughput failed (AssertionError: uppy5 failed: boom)"
    assert why["renderer peak, 4 GiB vs 64 MiB"] == "not measured: memory failed (TimeoutError: engine to finish)"
    assert why["first visit over the wire"] == "not measured: no ready scenario in this profile's run"
    ready = [t["text"] for t in run["issue17_targets"] if t["profile"] == "50mbit"]
    assert ready == ["not measured: no 50mbit run"]
