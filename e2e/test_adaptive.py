"""The engine adapts to the link: a browser's next upload is cut into parts sized by what its last one measured."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from playwright.sync_api import expect

from browser_py.engine.link import LinkMemory
from wire.plan import MiB

from .conftest import AppUnderTest, Browser, open_app, random_file, record_metric, sha256_file, wait_for
from .ui import pick

READ_LINK_NOTE = """async () => {
  const root = await navigator.storage.getDirectory();
  try { return await (await (await root.getFileHandle("link.json")).getFile()).text(); } catch { return null; }
}"""


def upload_and_wait(app: AppUnderTest, page, source: Path) -> set[str]:  # type: ignore[no-untyped-def]
    """Upload ``source`` to completion; return the S3 upload ids its PUTs carried."""
    before = {p.upload_id for p in app.proxy.state.snapshot()}
    pick(page, source)
    expect(page.locator(".upload", has_text=source.name)).to_have_attribute("data-phase", "completed",
                                                                            timeout=120_000)
    return {p.upload_id for p in app.proxy.state.snapshot()} - before


def object_sha256(app: AppUnderTest, file_name: str) -> str:
    for key in app.objects():
        head = app.s3.head_object(Bucket=app.bucket, Key=key)
        if file_name in json.dumps(head.get("Metadata", {})) or file_name in head.get("ContentDisposition", ""):
            return hashlib.sha256(app.s3.get_object(Bucket=app.bucket, Key=key)["Body"].read()).hexdigest()
    raise AssertionError(f"no object for {file_name} in {app.objects()}")


def test_the_next_upload_is_cut_by_what_the_last_one_measured(app: AppUnderTest, browser: Browser,
                                                               tmp_path: Path) -> None:
    assert browser.context is not None
    page = open_app(browser.context, app)
    first = random_file(tmp_path / "first.bin", 48 * MiB)
    first_ids = upload_and_wait(app, page, first)
    first_parts = {p.received for p in app.proxy.state.completed() if p.upload_id in first_ids}
    assert first_parts == {8 * MiB}, "nothing measured yet: the server's PART_SIZE_BYTES"

    # The worker saves what it measured right after it publishes "completed": wait for the note, not just the card.
    note = wait_for(lambda: page.evaluate(READ_LINK_NOTE), 10, "the finished upload to leave what it measured")
    link = LinkMemory.from_json(note)
    assert link.per_connection_rate is not None and link.per_connection_rate > 0 and link.uploads == 1

    second = random_file(tmp_path / "second.bin", 160 * MiB)
    second_ids = upload_and_wait(app, page, second)
    part_one = [p.received for p in app.proxy.state.completed() if p.upload_id in second_ids and p.part_number == 1]
    assert part_one == [link.part_size(160 * MiB, None)], "part size chosen from the measured rate"
    assert object_sha256(app, second.name) == sha256_file(second)
    record_metric("adaptive_part_size", {"measured_per_connection_mbps": round(link.per_connection_rate / 1e6, 1),
                                         "next_part_size_mib": part_one[0] / MiB})
