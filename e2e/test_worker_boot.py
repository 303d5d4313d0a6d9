"""The worker boots from the build's Pyodide memory snapshot, and boots plainly when the snapshot is missing or does
not match the runtime. Functional only: boot times are measured by ``make bench``, never asserted here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.live_server import LiveServer
from tests.support.worker_diagnostics import worker_report
from wire.plan import MiB

from .conftest import RUNTIME_DIR, WEB_DIR, Browser, random_file
from .ui import pick


def _copy_runtime(target: Path) -> dict[str, Any]:
    """A private copy of the built runtime (hard links where possible) whose runtime.json a test may break."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(RUNTIME_DIR, target, copy_function=link)
    runtime: dict[str, Any] = json.loads((target / "runtime.json").read_text())
    assert "snapshot" in runtime, "the build made no memory snapshot (is Node installed?): see web/build_runtime.py"
    return runtime


def _break(kind: str, target: Path, runtime: dict[str, Any]) -> None:
    snapshot = runtime["snapshot"]
    file = target / snapshot["url"].removeprefix("/runtime/")
    if kind == "missing":
        del runtime["snapshot"]
    elif kind == "unreachable":
        snapshot["url"] = snapshot["url"].replace(".bin", "-gone.bin")
    elif kind == "stale":
        snapshot["key"] = "0" * len(snapshot["key"])  # a snapshot of another engine build
    elif kind == "other-build":
        # What a Pyodide upgrade without a rebuilt snapshot looks like: the header's build id no longer matches.
        pages = bytearray(file.read_bytes())
        pages[16:48] = bytes(32)
        for variant in (file, file.with_name(file.name + ".br"), file.with_name(file.name + ".gz")):
            variant.unlink(missing_ok=True)  # hard links: never write through them into the real build
        file.write_bytes(bytes(pages))
    else:
        raise ValueError(kind)
    (target / "runtime.json").unlink()
    (target / "runtime.json").write_text(json.dumps(runtime))


@pytest.fixture
def serve_runtime(
    runtime_built: None, make_live_server: Callable[..., LiveServer], tmp_path: Path
) -> Callable[[str | None], LiveServer]:
    def serve(broken: str | None) -> LiveServer:
        target = tmp_path / "runtime"
        runtime = _copy_runtime(target)
        if broken:
            _break(broken, target, runtime)
        return make_live_server(web_dir=WEB_DIR, runtime_dir=target)

    return serve


def _upload_small_file(page: Page, tmp_path: Path) -> None:
    source = random_file(tmp_path / "boot-check.bin", 6 * MiB)
    pick(page, source)
    upload = page.locator(".upload", has_text="boot-check.bin")
    expect(upload).to_have_attribute("data-phase", "completed", timeout=60_000)


def _open(browser: Browser, server: LiveServer) -> Page:
    assert browser.context is not None
    page = browser.context.new_page()
    page.on("console", lambda m: print(f"[page {m.type}] {m.text}") if m.type in ("error", "warning") else None)
    page.goto(server.base_url + "/")
    page.wait_for_selector('#engine[data-state="ready"]', timeout=60_000)
    return page


def test_worker_boots_from_the_memory_snapshot(
    serve_runtime: Callable[[str | None], LiveServer], browser: Browser, tmp_path: Path
) -> None:
    server = serve_runtime(None)
    page = _open(browser, server)
    report = worker_report(page)
    assert report["boot"]["mode"] == "snapshot", report["boot"]
    assert report["boot"]["fallback"] is None
    assert report["boot"]["error"] is None
    fetched = [r["name"] for r in report["resources"]]
    assert not [name for name in fetched if name.endswith(".whl")], "a snapshot boot needs no engine wheel"
    # The standard library it downloads is the snapshot's trimmed one, not Pyodide's whole zip.
    assert [n for n in fetched if n.endswith("/snapshot/" + runtime_info()["snapshot"]["stdlib"])], fetched
    assert not [n for n in fetched if n.endswith("python_stdlib.zip")], fetched
    _upload_small_file(page, tmp_path)  # the restored interpreter really works: OPFS, fetch, asyncio, the engine


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("missing", "the build made no snapshot"),
        ("unreachable", "memory snapshot: HTTP 404"),
        ("stale", "snapshot holds"),
        ("other-build", "Snapshot build id mismatch"),
    ],
)
def test_worker_boots_without_a_snapshot_that_does_not_fit(
    serve_runtime: Callable[[str | None], LiveServer], browser: Browser, tmp_path: Path, broken: str, reason: str
) -> None:
    server = serve_runtime(broken)
    page = _open(browser, server)
    report = worker_report(page)
    assert report["boot"]["mode"] == "plain", report["boot"]
    assert reason in (report["boot"]["fallback"] or ""), report["boot"]
    if broken == "missing":  # one full upload on the plain path; the others only need to reach "ready"
        _upload_small_file(page, tmp_path)


def runtime_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads((RUNTIME_DIR / "runtime.json").read_text())
    return info


def _restore_in_node(code: str) -> dict[str, Any]:
    """Run ``code`` in the built snapshot restored under Node as the worker restores it (e2e/restore_in_node.mjs)."""
    done = subprocess.run(
        ["node", str(Path(__file__).with_name("restore_in_node.mjs")), str(RUNTIME_DIR), code],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_a_module_left_out_of_the_trimmed_stdlib_names_itself(runtime_built: None) -> None:
    """The snapshot's stdlib holds only what the engine had imported: what it holds still imports after the restore
    (json's lazy scanner, a codec looked up by name), and a module left out fails saying which and why."""
    kept = _restore_in_node(
        "import codecs, json, sys; json.loads('[1]')[0] + len(codecs.lookup('cp1252').name)"
        " + (sys._smartcat_snapshot_key is not None)"
    )
    assert kept == {"result": 1 + len("cp1252") + 1}
    left_out = _restore_in_node("import unittest")
    assert "unittest is not in this runtime's standard library" in left_out.get("error", ""), left_out
