"""Fixtures for the journey in Firefox and WebKit: the same app under test as the Chromium tests (``e2e/conftest.py``),
one browser of the engine under test on a persistent profile, and helpers that read the page the way a user does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import wait_for
from ..ui import SHADOW
from .drivers import EngineBrowser, EnginePage, Firefox, WebKit, missing, xvfb

ENGINES = ["firefox", "webkit"]


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineBrowser]:
    """The browser of one engine, launched on a fresh persistent profile; a blank tab keeps it open."""
    name: str = request.param
    absent = missing(name)
    if absent:
        pytest.fail(f"{name}: {absent} missing: `make engines` installs it")
    browser: EngineBrowser
    if name == "firefox":
        browser = Firefox(tmp_path / "profile", tmp_path / "home")
    else:
        browser = WebKit(tmp_path / "profile", request.getfixturevalue("display"), tmp_path / "webkitdriver.log")
    try:
        yield browser
    finally:
        browser.close()


ENGINE_STATE = "() => { const e = document.querySelector('#engine'); return e && [e.dataset.state, e.textContent]; }"

CARD = f"""(name) => {{
  const el = [...({SHADOW})?.querySelectorAll('.upload') ?? []]
    .find((e) => e.querySelector('.upload-name')?.textContent === name);
  if (!el) return null;
  return {{ phase: el.dataset.phase, saved: el.dataset.saved, status: el.querySelector('.upload-status').textContent,
           percent: el.querySelector('.upload-percent').textContent }};
}}"""


def engine_state(page: EnginePage) -> tuple[str | None, str]:
    state = page.evaluate(ENGINE_STATE)
    return (state[0], state[1]) if state else (None, "")


def open_app(browser: EngineBrowser, url: str, timeout: float = 90) -> EnginePage:
    """A new tab on the app, once its upload engine says it is ready (fails at once if it says it failed)."""
    page = browser.open(url)

    def ready() -> bool:
        state, text = engine_state(page)
        assert state not in ("failed", "error"), f"{browser.name}: the upload engine failed: {text}"
        return state == "ready"

    wait_for(ready, timeout, f"{browser.name}: the upload engine to be ready", interval=0.1)
    return page


def card(page: EnginePage, name: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = page.evaluate(CARD, name)
    return result


def wait_for_card(page: EnginePage, name: str, condition: Callable[[dict[str, Any]], bool], timeout: float,
                  what: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = card(page, name)
        if found and found["phase"] == "failed" and not condition(found):
            raise AssertionError(f"{name}: {found['status']}")
        return found if found and condition(found) else None

    result: dict[str, Any] = wait_for(check, timeout, what, interval=0.1)
    return result

