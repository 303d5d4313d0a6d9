"""Reading a load step's results (load/stats.py): Locust's CSV files, the servers' memory slope, a failure's reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from load.stats import Sample, read_stats, rss_slope, short_reason

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,urls,241,1,4400,9000.5,12,59613.04,900,4.7,0.02,4400,6000,8000,9000,20000,40000,50000,57000,59000,59000,59000
GET,status,0,0,0,0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
,Aggregated,241,1,4400,9000.5,12,59613.04,900,4.7,0.02,4400,6000,8000,9000,20000,40000,50000,57000,59000,59000,59000
"""
URL = "http://127.0.0.1:13160/api/uploads"
FAILURES = f"""Method,Name,Error,Occurrences
POST,urls,"CatchResponseError('urls: HTTP 504 URL {URL}/8v8XIWXImYR0en4DyT5YjQ/urls: code=504')",1
POST,urls,"CatchResponseError('urls: HTTP 504 URL {URL}/x5ho-nuDycg3wHc_desbA/urls: code=504')",2
POST,create,"CatchResponseError('create: HTTP 504 URL {URL}: code=504')",29
"""


def test_failures_are_counted_by_kind_whatever_the_session_and_empty_rows_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "step_stats.csv").write_text(STATS, encoding="utf-8")
    (tmp_path / "step_failures.csv").write_text(FAILURES, encoding="utf-8")
    endpoints, failures = read_stats(tmp_path / "step")
    assert set(endpoints) == {"urls", "Aggregated"}
    assert endpoints["urls"] == {
        "requests": 241.0, "failures": 1.0, "rps": 4.7, "p50_ms": 4400.0, "p99_ms": 57000.0, "max_ms": 59613.0,
    }  # fmt: skip
    assert failures == [
        {"name": "create", "error": f"CatchResponseError('create: HTTP 504 URL {URL}: code=504')", "count": 29},
        {"name": "urls", "error": f"CatchResponseError('urls: HTTP 504 URL {URL}/{{id}}/urls: code=504')", "count": 3},
    ]


def _samples(rss: list[float]) -> list[Sample]:
    return [Sample(t=float(second), cpu_percent=0.0, rss_mib=value, load1=0.0) for second, value in enumerate(rss)]


def test_the_memory_slope_is_taken_after_the_first_half_filled_the_caches() -> None:
    filling_then_flat = [100.0 + min(second, 300) * 0.1 for second in range(600)]  # +30 MiB in 5 min, then flat
    assert rss_slope(_samples(filling_then_flat)) == pytest.approx(0.0, abs=1e-6)
    leaking = [100.0 + second / 60 for second in range(600)]  # 1 MiB a minute all along
    assert rss_slope(_samples(leaking)) == pytest.approx(1.0)
    assert rss_slope(_samples([100.0, 101.0])) == 0.0  # one sample in the second half: no slope


def test_a_scenario_that_failed_is_named_in_one_line_ending_with_why() -> None:
    log = "server on port 1 exited with code 1 during start-up\nTraceback …\n  File x\nValueError: bad setting\n"
    assert short_reason(RuntimeError(log)) == (
        "RuntimeError: server on port 1 exited with code 1 during start-up … ValueError: bad setting"
    )
    assert short_reason(TimeoutError("no answer")) == "TimeoutError: no answer"
    assert len(short_reason(RuntimeError("x" * 2000))) == 600
