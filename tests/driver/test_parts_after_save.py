"""``PersistManifest(before_parts=True)``: the URL request goes at once, but no PUT starts before that manifest (with
the checksums a resume checks S3's parts against) is on disk; a save that fails stops the part with the reason. A new
upload's first manifest is saved the same way, in order with later versions."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from browser_py.driver import MANIFEST_NOT_SAVED, UploadDriver
from browser_py.engine.commands import Command, HashPart, PersistManifest, RequestUrls, SendPart
from browser_py.engine.events import Event, PartFailed, UrlsReceived
from browser_py.engine.failures import FailureKind
from browser_py.engine.manifest import Manifest
from browser_py.engine.upload import Upload
from tests.driver.test_manifest_writer import until


class GatedStore:
    """A store whose save takes until the test opens the gate (OPFS queues a save behind the copy's writes)."""

    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.gate = asyncio.Event()
        self.fail = fail
        self.texts: list[str] = []

    async def save(self, local_id: str, manifest_json: str) -> None:
        self.log.append("save-start")
        await self.gate.wait()
        if self.fail:
            raise OSError("quota exceeded")
        self.log.append("saved")
        self.texts.append(manifest_json)

    async def discard(self, local_id: str) -> None:
        self.log.append("discarded")


class Api:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def request_urls(self, command: RequestUrls) -> UrlsReceived:
        self.log.append("urls-asked")
        return UrlsReceived(0.0, {}, 1e9)


class Sender:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def sha256(self, command: HashPart) -> str:
        raise AssertionError("not asked")

    async def send(self, command: SendPart) -> str:
        self.log.append(f"put {command.number}")
        return '"etag"'


def driver(store: GatedStore, log: list[str], seen: list[Event]) -> UploadDriver:
    upload = Upload(Manifest(local_id="L", file_name="f.bin", size=1, content_type="x", fingerprint="fp"))
    d = UploadDriver(upload, cast(Any, Api(log)), Sender(log), store, lambda: 0.0)

    def observe(event: Event, commands: list[Command]) -> None:
        seen.append(event)

    d.observer = observe
    return d


async def test_the_url_request_goes_while_the_save_runs_and_the_put_waits_for_the_save() -> None:
    log: list[str] = []
    store = GatedStore(log)
    d = driver(store, log, [])
    await d._execute([PersistManifest("L", "{}", before_parts=True), RequestUrls("S", ((1, "c"),))])
    await until(lambda: "urls-asked" in log)
    assert "saved" not in log, "the URL request did not wait for the save"
    await d._execute([SendPart(1, 0, 1, "http://store/1", "c")])
    await until(lambda: not d._calls)
    assert "put 1" not in log, "a PUT started before the checksums it depends on were on disk"
    store.gate.set()
    await until(lambda: "put 1" in log)
    assert log.index("saved") < log.index("put 1")


async def test_once_saved_a_put_starts_without_waiting_for_later_saves() -> None:
    log: list[str] = []
    store = GatedStore(log)
    store.gate.set()
    d = driver(store, log, [])
    await d._execute([PersistManifest("L", "{}", before_parts=True)])
    await until(lambda: "saved" in log)
    store.gate.clear()
    await d._execute([PersistManifest("L", "{}"), SendPart(1, 0, 1, "http://store/1", "c")])
    await until(lambda: "put 1" in log)
    assert log.count("saved") == 1, "the PUT did not wait for a save it does not depend on"
    store.gate.set()
    await d._manifests.flush()


async def test_a_save_that_fails_stops_the_part_with_the_reason_and_sends_nothing() -> None:
    log: list[str] = []
    seen: list[Event] = []
    store = GatedStore(log, fail=True)
    d = driver(store, log, seen)
    await d._execute([PersistManifest("L", "{}", before_parts=True), SendPart(1, 0, 1, "http://store/1", "c")])
    store.gate.set()
    await until(lambda: seen)
    [failed] = seen
    assert isinstance(failed, PartFailed) and failed.number == 1
    assert failed.failure.kind is FailureKind.FATAL
    assert failed.failure.message == f"{MANIFEST_NOT_SAVED}: quota exceeded"
    assert not [line for line in log if line.startswith("put")]


async def test_a_new_uploads_first_manifest_holds_nothing_up_and_is_saved_before_later_versions() -> None:
    log: list[str] = []
    store = GatedStore(log)
    d = driver(store, log, [])
    d.save_manifest()
    assert log == [], "nothing was awaited"
    await until(lambda: log == ["save-start"])
    await d._execute([PersistManifest("L", "later")])  # returns although the first save has not ended
    store.gate.set()
    await d._manifests.flush()
    assert [json.loads(text)["local_id"] if text != "later" else text for text in store.texts] == ["L", "later"]
