"""``INSERT … ON CONFLICT`` on the databases the server is tested on (SQLite, PostgreSQL): one statement for rows
that may already exist, where the ORM's ``merge`` reads each row first (a SELECT per row, then an INSERT or UPDATE).
Other databases get ``merge``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import Base, table_of


def upsert(
    db: Session, model: type[Base], rows: Sequence[Mapping[str, Any]], *, keys: Sequence[str], update: Sequence[str]
) -> None:
    """Insert ``rows`` of ``model``; a row whose ``keys`` exist already gets its ``update`` columns from it instead
    (none: it is left as it is; ``merge`` on other databases writes it again). In the caller's transaction, no
    commit."""
    if not rows:
        return
    name = db.get_bind().dialect.name
    if name not in ("postgresql", "sqlite"):
        for row in rows:
            db.merge(model(**row))
        return
    statement: Any = (postgresql if name == "postgresql" else sqlite).insert(table_of(model))
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={column: statement.excluded[column] for column in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    db.connection().execute(statement, [dict(row) for row in rows])  # Core: the ORM's bulk path buys nothing here
