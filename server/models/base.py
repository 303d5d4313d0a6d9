"""What every table shares: the declarative base and a datetime column that keeps its time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import DateTime, Dialect, Table
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

#: Owner keys (:attr:`server.identity.Principal.owner`): a host's tenant and user ids of up to 128 characters each,
#: percent-encoded, fit.
OWNER_KEY_LENGTH = 800


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> Table:
    """The model's table, for Core statements run on a session's connection (hot paths that need no ORM)."""
    return cast("Table", model.__table__)


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
