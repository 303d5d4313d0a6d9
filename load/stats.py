"""Reading what a load step produced: Locust's CSV statistics, the servers' memory over time, why a scenario
stopped. Standard library only, so ``tests/load/test_stats.py`` runs without the ``load`` extra."""

from __future__ import annotations

import collections
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SESSION_IN_PATH = re.compile(r"/api/uploads/[A-Za-z0-9_-]+")


@dataclass
class Sample:
    t: float
    cpu_percent: float  # of one core, summed over the server processes
    rss_mib: float  # summed over the server processes
    load1: float


def rss_slope(samples: list[Sample]) -> float:
    """Least-squares slope of the servers' RSS over the second half of the samples, in MiB per minute: the first
    half fills pools and caches; a leak keeps climbing after."""
    tail = samples[len(samples) // 2 :]
    if len(tail) < 2:
        return 0.0
    mean_t = sum(s.t for s in tail) / len(tail)
    mean_rss = sum(s.rss_mib for s in tail) / len(tail)
    spread = sum((s.t - mean_t) ** 2 for s in tail)
    if spread == 0:
        return 0.0
    return round(60.0 * sum((s.t - mean_t) * (s.rss_mib - mean_rss) for s in tail) / spread, 3)


def read_stats(prefix: Path) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Per endpoint (Locust's request name): requests, failures, rate, p50/p99/max ms; and the failures by kind."""
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
    # Locust counts each URL's error apart: one kind of error per step, whatever the session.
    kinds: collections.Counter[tuple[str, str]] = collections.Counter()
    with open(f"{prefix}_failures.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            kinds[row["Name"], SESSION_IN_PATH.sub("/api/uploads/{id}", row["Error"])[:300]] += int(row["Occurrences"])
    failures = [{"name": name, "error": error, "count": count} for (name, error), count in kinds.most_common()]
    return endpoints, failures


def short_reason(error: BaseException) -> str:
    """The error in one line: its first line, and its last when there are more (a child's log ends with why)."""
    said = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    why = said[0] if len(said) == 1 else f"{said[0]} … {said[-1]}"
    return f"{type(error).__name__}: {why}"[:600]
