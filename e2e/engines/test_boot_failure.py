"""A worker that cannot start says why in every engine. Firefox and WebKit leave the message out of ``error.stack``,
so the reason ("engine wheel: HTTP 404") was lost there until the worker kept both."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.support.live_server import LiveServer
from tests.support.worker_diagnostics import worker_report

from ..conftest import RUNTIME_DIR, WEB_DIR, wait_for
from .conftest import engine_state
from .drivers import EngineBrowser


def _runtime_without_engine(target: Path) -> None:
    """The built runtime (hard links) whose snapshot and engine wheel are both gone: nothing to boot from."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(RUNTIME_DIR, target, copy_function=link)
    runtime = json.loads((target / "runtime.json").read_text())
    runtime["snapshot"]["url"] = runtime["snapshot"]["url"].replace(".bin", "-gone.bin")
    runtime["engine_wheel_url"] = runtime["engine_wheel_url"].replace(".whl", "-gone.whl")
    (target / "runtime.json").unlink()  # a hard link: never write through it into the real build
    (target / "runtime.json").write_text(json.dumps(runtime))


def test_a_worker_that_cannot_start_says_why(
    runtime_built: None, make_live_server: Callable[..., LiveServer], engine: EngineBrowser, tmp_path: Path
) -> None:
    _runtime_without_engine(tmp_path / "runtime")
    server = make_live_server(web_dir=WEB_DIR, runtime_dir=tmp_path / "runtime")
    page = engine.open(server.base_url + "/")
    state = wait_for(lambda: engine_state(page)[0] == "failed" and engine_state(page), 60, "the engine to fail",
                     interval=0.1)
    assert state[1] == "Upload engine failed to start"
    boot = worker_report(page)["boot"]
    assert boot["mode"] is None
    assert boot["error"].startswith("Error: engine wheel: HTTP 404"), boot["error"]
