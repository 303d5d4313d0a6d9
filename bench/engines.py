"""Worker ready in Firefox and WebKit, measured like Chromium's (``scenarios.worker_ready``): worker start -> Python and
the engine ready, read from the worker's diagnostics channel, on a first visit (fresh profile) and on a returning
visit (browser cache warm, no worker running). The browsers are the e2e tests' (``e2e/engines/drivers.py``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from e2e.engines.drivers import EngineBrowser, EnginePage, Firefox, WebKit, missing, xvfb
from tests.support.live_server import LiveServer
from tests.support.worker_diagnostics import worker_report

from .harness import Progress, Stack, median
from .procs import wait_until

ENGINES = ("firefox", "webkit")
INSTANCE = "() => document.querySelector('#engine')?.dataset.instance || null"


@contextmanager
def _launch(engine: str, profile: Path, exits: ExitStack) -> Iterator[EngineBrowser]:
    browser: EngineBrowser
    if engine == "firefox":
        browser = Firefox(profile / "profile", profile / "home")
    else:
        browser = WebKit(profile / "profile", exits.enter_context(xvfb()), profile / "webkitdriver.log")
    try:
        yield browser
    finally:
        browser.close()


def _ready(browser: EngineBrowser, server: LiveServer, previous: str | None) -> tuple[dict[str, Any], str]:
    page: EnginePage = browser.open(server.base_url + "/")
    page_origin = float(page.evaluate("() => performance.timeOrigin"))
    report = worker_report(page)
    boot = report["boot"]
    assert boot["mode"] == "snapshot", f"{browser.name} did not boot from the snapshot: {boot}"
    instance = wait_until(lambda: page.evaluate(INSTANCE), 60, "the page to hear the worker")
    assert instance != previous, f"{browser.name}: the previous worker was still running"
    page.close()
    return {
        "python_ms": boot["python_ms"],
        "worker_ready_ms": boot["ready_ms"],
        "page_open_to_ready_ms": round(float(report["time_origin"]) + boot["ready_ms"] - page_origin, 1),
        "load_average": round(os.getloadavg()[0], 1),
    }, str(instance)


def worker_ready_engines(stack: Stack, tmp: Path, *, rounds: int, say: Progress) -> dict[str, Any]:
    """Per engine: first visit and returning visit from the snapshot, ``rounds`` fresh profiles each.

    On a server of its own whose new-identity limit allows a fresh profile per sample from this one address.
    """
    server = stack.server_for(tmp / "engines-server", rate_limit_new_identity="1000/minute")
    result: dict[str, Any] = {}
    for engine in ENGINES:
        absent = missing(engine)
        if absent:
            raise RuntimeError(f"{engine}: {absent} missing (make engines installs it)")
        samples: dict[str, list[dict[str, Any]]] = {"snapshot_first_visit": [], "snapshot_cached": []}
        version = ""
        for r in range(rounds):
            profile = tmp / f"{engine}-ready-{r}"
            profile.mkdir(parents=True)
            with ExitStack() as exits, _launch(engine, profile, exits) as browser:
                version = browser.version
                first, instance = _ready(browser, server, None)
                samples["snapshot_first_visit"].append(first)
                cached, _ = _ready(browser, server, instance)
                samples["snapshot_cached"].append(cached)
            shutil.rmtree(profile, ignore_errors=True)
            say(f"{engine} worker ready: first visit {first['worker_ready_ms']} ms, "
                f"returning {cached['worker_ready_ms']} ms")
        result[engine] = {"version": version} | {
            kind: {
                "worker_ready_ms": median([v["worker_ready_ms"] for v in values]),
                "python_ms": median([v["python_ms"] for v in values]),
                "page_open_to_ready_ms": median([v["page_open_to_ready_ms"] for v in values]),
                "samples_ms": [v["worker_ready_ms"] for v in values],
                "load_average": [v["load_average"] for v in values],
            }
            for kind, values in samples.items()
        }
    return result
