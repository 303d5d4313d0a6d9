"""Idle sessions expire: their multipart uploads are aborted on S3 and a resuming client is told to start over."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from server.clock import utcnow
from server.db import Database
from server.janitor import expire_idle_sessions
from server.models import OutboxEvent, UploadSession
from server.storage import S3Credentials, Storage
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.uploads import create_session, upload_all

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def backdate(database: Database, session_id: str, days: int) -> None:
    with database.sessions() as db:
        db.execute(
            update(UploadSession)
            .where(UploadSession.id == session_id)
            .values(updated_at=utcnow() - timedelta(days=days))
        )
        db.commit()


def test_idle_sessions_are_expired_and_aborted(live_server: LiveServer, s3: S3Client) -> None:
    assert live_server.app is not None
    database: Database = live_server.app.state.database
    storage: Storage = live_server.app.state.storage
    bucket = live_server.settings.s3_bucket
    with live_server.client() as client:
        idle = create_session(client, 10, file_name="idle.bin")
        active = create_session(client, 10, file_name="active.bin")
        backdate(database, idle["session_id"], days=8)
        expired = expire_idle_sessions(database, storage, timedelta(days=7))
        assert expired == [idle["session_id"]]
        uploads = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
        assert idle["upload_id"] not in uploads, "S3 no longer keeps the idle upload's parts"
        assert active["upload_id"] in uploads
        state = client.get(f"/api/uploads/{idle['session_id']}").json()
        assert state["status"] == "expired"
        assert client.get(f"/api/uploads/{active['session_id']}").json()["status"] == "uploading"
        # A second sweep finds nothing more to do.
        assert expire_idle_sessions(database, storage, timedelta(days=7)) == []
        # The user cancels it later (their tab was closed for a week): nothing is left to abort, and that is fine.
        assert client.delete(f"/api/uploads/{idle['session_id']}").status_code == 204
        assert client.get(f"/api/uploads/{idle['session_id']}").json()["status"] == "expired"


def test_a_sweep_that_cannot_reach_storage_leaves_sessions_for_the_next_one(live_server: LiveServer) -> None:
    assert live_server.app is not None
    database: Database = live_server.app.state.database
    settings = live_server.settings
    unreachable = Storage(
        endpoint_url="http://127.0.0.1:9",
        public_endpoint_url="http://127.0.0.1:9",
        bucket=settings.s3_bucket,
        credentials=S3Credentials(settings.s3_access_key_id, settings.s3_secret_access_key, settings.s3_region),
    )
    with live_server.client() as client:
        idle = create_session(client, 10, file_name="idle2.bin")
        backdate(database, idle["session_id"], days=30)
        assert expire_idle_sessions(database, unreachable, timedelta(days=7)) == []
        assert client.get(f"/api/uploads/{idle['session_id']}").json()["status"] == "uploading"


def test_an_upload_found_expired_is_expired_once_and_later_sweeps_go_on(
    make_live_server: MakeLiveServer, s3: S3Client
) -> None:
    """Complete finds the multipart upload gone: the session becomes ``expired`` with one ``upload_expired`` event,
    so the janitor neither records a second one (refused by the unique key) nor stops its sweep at that row."""
    server = make_live_server()
    assert server.app is not None
    database: Database = server.app.state.database
    storage: Storage = server.app.state.storage
    with server.client() as client:
        lost = create_session(client, 3, file_name="lost.bin")
        parts = upload_all(client, lost, b"abc")
        s3.abort_multipart_upload(Bucket=server.settings.s3_bucket, Key=lost["object_key"], UploadId=lost["upload_id"])
        gone = client.post(f"/api/uploads/{lost['session_id']}/complete", json={"parts": parts})
        assert gone.status_code == 410
        assert gone.json()["detail"] == "upload session expired on storage"
        idle = create_session(client, 3, file_name="idle.bin")
    with database.sessions() as db:
        row = db.get(UploadSession, lost["session_id"])
        assert row is not None and row.status == "expired"
    for session in (lost, idle):
        backdate(database, session["session_id"], days=30)
    assert expire_idle_sessions(database, storage, timedelta(days=7)) == [idle["session_id"]]
    assert expire_idle_sessions(database, storage, timedelta(days=7)) == []
    with database.sessions() as db:
        events = db.execute(select(OutboxEvent.session_id, OutboxEvent.type).order_by(OutboxEvent.id)).all()
    assert [tuple(e) for e in events] == [
        (lost["session_id"], "upload_expired"),
        (idle["session_id"], "upload_expired"),
    ]
