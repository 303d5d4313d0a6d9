"""Quarantine → scan → release, against a real clamd (Debian's clamav-daemon) with the EICAR test signature.

A completed object is handed out (download link, ``upload_completed``) only after clamd calls it clean; EICAR stays
in quarantine with ``upload_blocked`` and "Blocked: malware found (<signature>)"; an unreachable scanner keeps the
file "Checking for viruses…", makes the instance not ready, and the verdict arrives once clamd is back.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from browser_py import cli
from server.db import Database
from server.models import OutboxEvent, UploadSession
from server.scan.clamd import Clamd, ScannerUnavailable
from tests.support.clamd import EICAR_SIGNATURE, ClamdService, SlowClamd, eicar, scanner_env, start_scanners
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.notify import wait_until
from tests.support.ports import free_port
from tests.support.uploads import create_session, upload_all

#: Fast retries so an unreachable scanner is tried again within the test's patience.
QUICK_RETRY = {"outbox_retry_base_seconds": 0.2, "outbox_retry_max_seconds": 0.5, "outbox_poll_seconds": 0.5}


def upload(client: httpx.Client, data: bytes, name: str) -> dict[str, Any]:
    session = create_session(client, len(data), file_name=name, part_size=5 * 1024 * 1024)
    parts = upload_all(client, session, data)
    done = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})
    assert done.status_code == 200, done.text
    answer: dict[str, Any] = done.json()
    assert answer["status"] == "completed"
    return answer


def scan_of(client: httpx.Client, session_id: str) -> str | None:
    state: str | None = client.get(f"/api/uploads/{session_id}").json()["scan_status"]
    return state


def events(server: LiveServer, session_id: str) -> list[dict[str, Any]]:
    assert server.app is not None
    database: Database = server.app.state.database
    with database.sessions() as db:
        rows = db.scalars(select(OutboxEvent).where(OutboxEvent.session_id == session_id).order_by(OutboxEvent.id))
        return [json.loads(row.payload) for row in rows]


def test_eicar_stays_in_quarantine_and_is_announced_blocked(
    make_live_server: MakeLiveServer, clamd: ClamdService
) -> None:
    server = make_live_server(scan="clamd", clamd_port=clamd.port)
    with server.client() as client:
        done = upload(client, eicar(), "eicar.txt")
        sid = done["session_id"]
        assert done["scan_status"] in ("pending", "infected")
        wait_until(lambda: scan_of(client, sid) == "infected", 30, "the scan verdict")
        state = client.get(f"/api/uploads/{sid}").json()
        assert state["scan_signature"] == EICAR_SIGNATURE
        page = client.get(f"/files/{sid}")
        assert f"Blocked: malware found ({EICAR_SIGNATURE})" in page.text
        assert 'class="download"' not in page.text, "no download link for an infected file"
    announced = events(server, sid)
    assert [e["type"] for e in announced] == ["upload_blocked"], "blocked, and never announced as completed"
    assert announced[0]["data"]["scan"] == {"status": "infected", "signature": EICAR_SIGNATURE}


def test_a_clean_file_is_released_only_after_its_scan(make_live_server: MakeLiveServer, tmp_path: Path) -> None:
    """clamd is down when the upload completes: the file waits ("Checking for viruses…", no link, no event, not
    ready); once clamd starts, the retried scan releases it and ``upload_completed`` goes out once."""
    scanner = ClamdService(tmp_path / "clamd", port=free_port())
    scanner.prepare()
    server = make_live_server(scan="clamd", clamd_port=scanner.port, **QUICK_RETRY)
    data = os.urandom(6 * 1024 * 1024)
    try:
        with server.client() as client:
            sid = upload(client, data, "report.bin")["session_id"]
            assert server.app is not None
            database: Database = server.app.state.database

            wait_until(lambda: _scan_attempts(database, sid) >= 2, 30, "two failed scan attempts")
            assert scan_of(client, sid) == "pending"
            page = client.get(f"/files/{sid}")
            assert "Checking for viruses…" in page.text
            assert 'class="download"' not in page.text, "no link to a file in quarantine"
            assert events(server, sid) == [], "nothing announces a file in quarantine"
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["scanner"] == "unavailable"

            scanner.start()
            wait_until(lambda: scan_of(client, sid) == "clean", 30, "the scan after clamd came back")
            page = client.get(f"/files/{sid}")
            assert "Uploaded in full" in page.text and 'class="download"' in page.text
            assert client.get("/readyz").status_code == 200
        wait_until(lambda: len(events(server, sid)) == 1, 10, "the completion event")
        (announced,) = events(server, sid)
        assert announced["type"] == "upload_completed"
        assert announced["data"]["scan"] == {"status": "clean", "signature": None}
    finally:
        scanner.stop()


def _scan_attempts(database: Database, session_id: str) -> int:
    with database.sessions() as db:
        row = db.get(UploadSession, session_id)
        return row.scan_attempts if row is not None else 0


@pytest.mark.parametrize(
    ("oversize", "verdict", "event"),
    [("block", "too_large", "upload_blocked"), ("release", "unscanned", "upload_completed")],
)
def test_an_object_over_the_scan_limit_is_handled_as_configured(
    make_live_server: MakeLiveServer, clamd: ClamdService, oversize: str, verdict: str, event: str
) -> None:
    server = make_live_server(scan="clamd", clamd_port=clamd.port, scan_max_bytes=1024, scan_oversize=oversize)
    with server.client() as client:
        sid = upload(client, eicar() + os.urandom(2048), "big.bin")["session_id"]
        wait_until(lambda: scan_of(client, sid) == verdict, 30, "the oversize verdict")
        page = client.get(f"/files/{sid}")
        assert ('class="download"' in page.text) is (oversize == "release")
    assert [e["type"] for e in events(server, sid)] == [event]


def test_scanning_off_releases_at_once(live_server: LiveServer) -> None:
    with live_server.client() as client:
        done = upload(client, eicar(), "eicar.txt")
        assert done["scan_status"] is None
        assert 'class="download"' in client.get(f"/files/{done['session_id']}").text
        assert client.get("/readyz").json()["checks"] == {"database": "ok", "storage": "ok"}


def _verdicts(database: Database, session_ids: list[str]) -> dict[str, str | None]:
    with database.sessions() as db:
        rows = db.scalars(select(UploadSession).where(UploadSession.id.in_(session_ids)))
        return {row.id: row.scan_status for row in rows}


def test_scanner_processes_share_the_work_and_one_killed_mid_scan_is_replaced(
    make_live_server: MakeLiveServer, clamd: ClamdService, tmp_path: Path
) -> None:
    """Two ``python -m server.scan`` processes on the server's database (``SCAN_IN_PROCESS=false``). Each object is
    scanned by exactly one of them and both take part (clamd's answers are held a while, so neither can take all).
    Then the one holding a scan is killed (SIGKILL) while clamd's answer is on its way: its lease runs out, the other
    scans the object again, and every upload has exactly one verdict and one event."""
    slow = SlowClamd(clamd.port, delay=1.0).start()
    server = make_live_server(
        scan="clamd", clamd_port=slow.port, scan_in_process=False, scan_lease_seconds=6, **QUICK_RETRY
    )
    scanners = start_scanners(scanner_env(server.settings, slow.port), tmp_path, "scanner-a", "scanner-b")
    assert server.app is not None
    database: Database = server.app.state.database
    try:
        with server.client() as client:
            names = ["a.txt", "b.bin", "c.txt", "d.bin"]
            sids = [upload(client, eicar() if n.endswith(".txt") else os.urandom(1024), n)["session_id"] for n in names]
            wait_until(lambda: "pending" not in _verdicts(database, sids).values(), 60, "every verdict")
            verdicts = _verdicts(database, sids)
            assert [verdicts[sid] for sid in sids] == ["infected", "clean", "infected", "clean"]
            for sid in sids:
                assert sum(s.scanned(sid) for s in scanners) == 1, f"{sid} scanned once"
            assert all(any(s.scanned(sid) for sid in sids) for s in scanners), "both scanners took part"

            slow.delay = 300.0
            last = upload(client, eicar(), "e.txt")["session_id"]
            wait_until(lambda: slow.held == len(sids) + 1, 30, "clamd's answer to the last scan")
            (killed,) = [s for s in scanners if s.holds(_lease(database, last))]
            killed.process.kill()
            killed.process.wait()
            slow.delay = 0.0
            assert scan_of(client, last) == "pending", "no verdict from the killed scanner"
            wait_until(lambda: scan_of(client, last) == "infected", 30, "the verdict from the other scanner")
        (survivor,) = [s for s in scanners if s is not killed]
        assert (killed.scanned(last), survivor.scanned(last)) == (0, 1)
        every = [*sids, last]
        wait_until(lambda: all(len(events(server, sid)) == 1 for sid in every), 15, "one event per upload")
        assert [events(server, sid)[0]["type"] for sid in every] == ["upload_blocked", "upload_completed"] * 2 + [
            "upload_blocked"
        ]
    finally:
        for scanner in scanners:
            scanner.stop()
        slow.stop()


def _lease(database: Database, session_id: str) -> str | None:
    with database.sessions() as db:
        row = db.get(UploadSession, session_id)
        return row.scan_lease if row is not None else None


def test_a_stream_longer_than_clamd_takes_is_an_error_to_retry_never_a_verdict(tmp_path: Path) -> None:
    """A clamd whose StreamMaxLength is below SCAN_MAX_BYTES (a misconfiguration) refuses the stream: the scanner
    says why and retries; it never reads that as clean."""
    small = ClamdService(tmp_path / "clamd", stream_max_bytes=1024 * 1024)
    small.prepare()
    small.start()
    try:
        scanner = Clamd("127.0.0.1", small.port, 30.0)
        assert scanner.scan(io.BytesIO(eicar())).signature == EICAR_SIGNATURE
        with pytest.raises(ScannerUnavailable, match="StreamMaxLength is below SCAN_MAX_BYTES"):
            scanner.scan(io.BytesIO(os.urandom(2 * 1024 * 1024)))
    finally:
        small.stop()


def test_the_command_line_uploader_waits_for_the_verdict_and_reports_it(
    make_live_server: MakeLiveServer, clamd: ClamdService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine in CPython polls the verdict like the browser's: the clean file is reported uploaded, the EICAR
    one blocked with its signature, and the exit status says not everything is usable."""
    server = make_live_server(scan="clamd", clamd_port=clamd.port)
    clean, bad = tmp_path / "clean.bin", tmp_path / "eicar.bin"
    clean.write_bytes(os.urandom(64 * 1024))
    bad.write_bytes(eicar())
    status = cli.main([str(clean), str(bad), "--server", server.base_url, "--state-dir", str(tmp_path / "state")])
    out, err = capsys.readouterr()
    assert status == 1
    assert "uploaded clean.bin (65536 bytes) as session" in out
    assert f"eicar.bin was uploaded but is blocked: Blocked: malware found ({EICAR_SIGNATURE})" in err


def test_content_clamd_stopped_scanning_at_a_limit_is_not_called_malware_or_clean(
    make_live_server: MakeLiveServer, tmp_path: Path
) -> None:
    """clamd takes the stream but stops at MaxFileSize and says "Heuristics.Limits.Exceeded…": the object was not
    checked whole, so SCAN_OVERSIZE applies (blocked: "too large to check for viruses"), not "malware found"."""
    limited = ClamdService(tmp_path / "clamd", stream_max_bytes=4 * 1024 * 1024, file_max_bytes=1024 * 1024)
    limited.prepare()
    limited.start()
    try:
        server = make_live_server(scan="clamd", clamd_port=limited.port)
        with server.client() as client:
            sid = upload(client, os.urandom(2 * 1024 * 1024), "big.bin")["session_id"]
            wait_until(lambda: scan_of(client, sid) == "too_large", 30, "the verdict")
            assert client.get(f"/api/uploads/{sid}").json()["scan_signature"] is None
            page = client.get(f"/files/{sid}").text
            assert "Blocked: too large to check for viruses" in page and 'class="download"' not in page
        assert [e["type"] for e in events(server, sid)] == ["upload_blocked"]
    finally:
        limited.stop()
