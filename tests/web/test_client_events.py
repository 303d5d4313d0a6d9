"""The client API's events (web/client.mjs), checked in Node by tests/web/js/client_events.test.mjs: the documented
events, once each (``failed`` and ``leave-hint`` on the transition, not on every update), links under the base."""

from __future__ import annotations

import subprocess
from pathlib import Path

JS_TESTS = Path(__file__).resolve().parent / "js"


def test_the_client_relays_the_engine_as_the_documented_events() -> None:
    result = subprocess.run(["node", "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 1" in result.stdout and "# fail 0" in result.stdout
