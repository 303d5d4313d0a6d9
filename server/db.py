"""Upload sessions in SQL (SQLite by default): the server's memory of which S3 multipart upload is whose."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Engine, ForeignKey, Integer, String, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_session_id() -> str:
    """128 random bits, URL-safe: unguessable, so ids can appear in URLs and logs."""
    return secrets.token_urlsafe(16)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and gives them back aware (SQLite would drop the zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class UploadStatus(StrEnum):
    UPLOADING = "uploading"
    COMPLETED = "completed"
    ABORTED = "aborted"
    EXPIRED = "expired"  # idle too long: the janitor aborted its multipart upload
    FAILED = "failed"  # S3 assembled other bytes than were verified; the object was deleted


class Base(DeclarativeBase):
    pass


class UploadSession(Base):
    """One S3 multipart upload of one file by one (anonymous) user."""

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_session_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(256), default="")
    object_key: Mapped[str] = mapped_column(String(1024))
    upload_id: Mapped[str] = mapped_column(String(1024))
    part_size: Mapped[int] = mapped_column(BigInteger)
    part_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.UPLOADING.value, index=True)
    etag: Mapped[str | None] = mapped_column(String(128), default=None)
    #: "SHA256" when every part carries a signed x-amz-checksum-sha256 (S3 verifies each part's bytes).
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16), default=None)
    #: The composite checksum S3 reported at completion, checked against the parts' recorded checksums.
    checksum_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    #: A lease taken while one request completes or aborts the upload, so a concurrent one waits instead of
    #: racing it; a lease older than ten minutes is considered abandoned (its request died).
    finish_lease: Mapped[str | None] = mapped_column(String(32), default=None)
    finish_lease_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PartChecksum(Base):
    """The checksum signed into a part's latest URL: what S3 verified, so completion can be checked end to end."""

    __tablename__ = "part_checksums"

    session_id: Mapped[str] = mapped_column(ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True)
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))


class Database:
    """The engine and session factory for one ``DATABASE_URL``."""

    def __init__(self, url: str) -> None:
        connect_args: dict[str, Any] = {}
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            # Request handlers run in a thread pool; a connection may be used by another thread than its creator.
            connect_args = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, connect_args=connect_args)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (server/migrations); a fresh database gets all of it."""
        from server.migrate import migrate

        migrate(self.engine)

    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL lets readers proceed while a writer commits; foreign keys are off by default in SQLite."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
