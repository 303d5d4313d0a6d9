"""Idle sessions expire: their multipart uploads are aborted on S3 and a resuming client is told to start over."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update

from server.db import Database, UploadSession, utcnow
from server.janitor import expire_idle_sessions
from server.storage import S3Credentials, Storage
from tests.support.live_server import LiveServer
from tests.support.uploads import create_session

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
