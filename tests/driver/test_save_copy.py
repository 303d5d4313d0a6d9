"""The driver hands ``SaveCopy`` to the adapter (which holds the file chosen again), once, and in order."""

from __future__ import annotations

from typing import Any, cast

from browser_py.driver import UploadDriver
from browser_py.engine.commands import PersistManifest, SaveCopy
from browser_py.engine.manifest import Manifest
from browser_py.engine.upload import Upload


class Store:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def save(self, local_id: str, manifest_json: str) -> None:
        self.log.append("saved")

    async def discard(self, local_id: str) -> None:
        self.log.append("discarded")


def upload() -> Upload:
    return Upload(Manifest(local_id="L", file_name="f.bin", size=1, content_type="x", fingerprint="fp"))


async def test_save_copy_starts_the_copy_after_the_manifest_that_precedes_it() -> None:
    log: list[str] = []
    nothing = cast(Any, None)
    driver = UploadDriver(upload(), nothing, nothing, Store(log), lambda: 0.0, on_copy=lambda: log.append("copy"))
    await driver._execute([PersistManifest("L", "{}", wait=True), SaveCopy("L")])
    assert log == ["saved", "copy"]

