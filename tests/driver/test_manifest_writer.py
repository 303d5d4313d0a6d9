"""Manifests are saved in the background: newest wins, nothing comes back after a discard, failures surface."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from browser_py.driver import ManifestWriter


class SlowStore:
    """A store whose saves take a while, like OPFS while a large copy is being written to it."""

    def __init__(self, delay: float = 0.02, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.log: list[tuple[str, str]] = []

    async def save(self, local_id: str, manifest_json: str) -> None:
        self.log.append(("save-start", manifest_json))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OSError("quota exceeded")
        self.log.append(("saved", manifest_json))

    async def discard(self, local_id: str) -> None:
        self.log.append(("discard", local_id))


async def until(condition: Callable[[], object]) -> None:
    """Let the writer's task run until ``condition()`` holds."""
    for _ in range(1_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the writer never got there")


async def test_submit_returns_at_once_and_the_newest_version_replaces_waiting_ones() -> None:
    store = SlowStore()
    writer = ManifestWriter(store, "L")
    writer.submit("v1")
    assert store.log == [], "nothing was awaited"
    await until(lambda: store.log)  # v1 is being written
    writer.submit("v2")
    writer.submit("v3")
    await writer.flush()
    assert [text for what, text in store.log if what == "saved"] == ["v1", "v3"], "v2 was replaced before its turn"


async def test_discard_waits_for_the_save_under_way_and_drops_the_rest() -> None:
    store = SlowStore()
    writer = ManifestWriter(store, "L")
    writer.submit("v1")
    await until(lambda: store.log)  # v1 is being written
    writer.submit("v2")
    await writer.discard()
    assert store.log == [("save-start", "v1"), ("saved", "v1"), ("discard", "L")]
    await asyncio.sleep(store.delay * 2)  # the observation window: a save after the discard would have started
    assert store.log[-1] == ("discard", "L"), "no save after the discard"


async def test_a_failed_save_is_raised_by_the_next_flush_only_once() -> None:
    store = SlowStore(fail=True)
    writer = ManifestWriter(store, "L")
    writer.submit("v1")
    with pytest.raises(OSError, match="quota"):
        await writer.flush()
    await writer.flush()


async def test_flush_with_nothing_submitted_returns() -> None:
    await ManifestWriter(SlowStore(), "L").flush()
