"""web/wire.d.ts is what TypeScript hosts know of the Python types: it must be exactly what the types generate."""

from __future__ import annotations

import subprocess

import pytest

from wire import tsdecl, view

REACT = tsdecl.OUTPUT.parent.parent / "clients" / "react"


def test_the_committed_wire_d_ts_matches_the_python_types() -> None:
    assert tsdecl.OUTPUT.read_text(encoding="utf-8") == tsdecl.render(), (
        "web/wire.d.ts is stale: run `python -m wire.tsdecl` and commit it"
    )


def test_the_element_and_the_client_take_their_words_from_wire_js() -> None:
    web = tsdecl.OUTPUT.parent
    scripts = (web / "element.mjs").read_text(encoding="utf-8") + (web / "client.mjs").read_text(encoding="utf-8")
    for table in (view.ACTION_TEXT, view.ELEMENT_TEXT, view.ENGINE_TEXT):
        for text in table.values():
            if len(text) > 8:
                assert text not in scripts, text
    assert "/files/" not in scripts, "the status page path is built in Python (wire.view.status_page_path)"


def test_a_typescript_consumer_of_the_client_and_the_hook_compiles() -> None:
    """clients/react/typecheck/consumer.ts against web/client.d.ts, web/wire.d.ts and the hook's index.d.ts, with
    ``tsc --noEmit`` from clients/react's lock file (``make clients``); it also expects two misuses to be errors."""
    tsc = REACT / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("clients/react/node_modules is missing: run `make clients` (make test does it)")
    result = subprocess.run([str(tsc), "-p", str(REACT / "typecheck")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
