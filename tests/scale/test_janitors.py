"""Two instances' janitors sweep the same database at the same moment: each idle session is expired once, by one
of them, with one ``upload_expired`` event, and its multipart upload is gone from the store.

Run with ``--db=postgresql`` the two sweeps are real concurrent transactions on PostgreSQL.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from server.db import Database
from server.janitor import expire_idle_sessions
from server.models import OutboxEvent
from server.storage import Storage
from tests.server.test_janitor import backdate
from tests.support.live_server import MakeLiveServer
from tests.support.uploads import create_session

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def test_two_janitors_expire_each_idle_session_once(
    make_live_server: MakeLiveServer, database_url: str, s3: S3Client
) -> None:
    a = make_live_server(database_url=database_url)
    b = make_live_server(database_url=database_url, s3_bucket=a.settings.s3_bucket)
    assert a.app is not None and b.app is not None
    with a.client() as client:
        ids = [create_session(client, 3, file_name=f"idle-{n}.bin")["session_id"] for n in range(6)]
    sweepers: list[tuple[Database, Storage]] = [
        (server.app.state.database, server.app.state.storage) for server in (a, b) if server.app is not None
    ]
    for session_id in ids:
        backdate(sweepers[0][0], session_id, days=30)

    start = threading.Barrier(2)
    expired: list[list[str]] = [[], []]

    def sweep(index: int) -> None:
        database, storage = sweepers[index]
        start.wait()
        expired[index] = expire_idle_sessions(database, storage, timedelta(days=7))

    threads = [threading.Thread(target=sweep, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(expired[0] + expired[1]) == sorted(ids), "every idle session is expired by exactly one janitor"
    with sweepers[0][0].sessions() as db:
        events = db.execute(select(OutboxEvent.session_id).where(OutboxEvent.type == "upload_expired")).scalars()
        assert sorted(events) == sorted(ids), "one upload_expired event each"
    assert not s3.list_multipart_uploads(Bucket=a.settings.s3_bucket).get("Uploads")
