"""The driver's timer: the tick it posts never carries a time before the one the engine asked for."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from browser_py.driver import UploadDriver
from browser_py.engine.events import Event, Tick
from browser_py.engine.manifest import Manifest
from browser_py.engine.upload import Upload


def new_upload() -> Upload:
    return Upload(Manifest(local_id="L", file_name="f.bin", size=1, content_type="x", fingerprint="fp"))


async def test_the_tick_waits_for_a_clock_slower_than_the_loop_timers() -> None:
    loop = asyncio.get_running_loop()

    def slow_clock() -> float:  # runs at half the speed of the loop's timers: every sleep ends "too early"
        return loop.time() / 2

    nothing = cast(Any, None)
    driver = UploadDriver(new_upload(), nothing, nothing, nothing, slow_clock)
    at = slow_clock() + 0.05
    posted: asyncio.Queue[Event] = asyncio.Queue()
    driver.post = posted.put_nowait  # type: ignore[method-assign]
    driver._set_timer(at)
    event = await asyncio.wait_for(posted.get(), timeout=5)
    assert isinstance(event, Tick)
    assert event.now >= at
