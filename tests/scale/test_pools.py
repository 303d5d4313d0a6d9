"""Pools sized for the request threads: ``make load`` found handlers queueing for SQLAlchemy's default 5 + 10
connections (failing after 30 s) and botocore opening and discarding a connection per S3 call past 10."""

from __future__ import annotations

from sqlalchemy.pool import QueuePool

from server.db import POOL_OVERFLOW, POOL_SIZE, Database
from server.storage import S3Credentials, make_client


def test_a_request_thread_never_waits_for_a_database_connection(database_url: str) -> None:
    database = Database(database_url)
    try:
        pool = database.engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == POOL_SIZE == 40, "anyio runs at most 40 sync handlers at once"
        assert POOL_OVERFLOW > 0, "background loops take the overflow"
    finally:
        database.dispose()


def test_the_s3_client_keeps_a_connection_per_request_thread() -> None:
    client = make_client("http://127.0.0.1:1", S3Credentials("k", "s", "us-east-1"))
    assert getattr(client.meta.config, "max_pool_connections", 0) >= POOL_SIZE
