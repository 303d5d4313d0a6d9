"""Leases on rows: a token and a deadline, written by one compare-and-set UPDATE.

Of several claimants (threads of one process, or several processes) exactly one sees its UPDATE change a row, on
any database (SQLite serialises writers; others lock the row), so no read-then-write race exists. A holder that
dies keeps the row only until the deadline; after it the row is open to the next claimant ("taken over").
Uploads (finishing a session), the outbox dispatcher (delivering an event) and the notifier (sending a batch) all
lease their rows through this module.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Update, or_, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from server.models import Base, table_of


class Claimant:
    """One holder of leases (a dispatcher, a notifier, the finishing requests of a process).

    Its tokens are ``<instance>-<n>``: unique, and all of them findable by the instance, so a stopping process can
    hand back what it still holds at once instead of letting it wait for the deadline.
    """

    def __init__(self) -> None:
        self.instance = secrets.token_hex(6)
        self._numbers = itertools.count(1)

    def token(self) -> str:
        return f"{self.instance}-{next(self._numbers)}"


@dataclass(frozen=True, slots=True)
class Lease:
    """The lease columns of one table: the holder's token and the deadline of its hold."""

    model: type[Base]
    token: InstrumentedAttribute[str | None]
    until: InstrumentedAttribute[datetime | None]

    def open(self, now: datetime) -> ColumnElement[bool]:
        """Nobody holds the row, or its holder's deadline has passed."""
        return or_(self.until.is_(None), self.until < now)

    def overdue(self, now: datetime) -> ColumnElement[bool]:
        """Held by a holder whose deadline has passed (presumed dead)."""
        return self.until < now

    def held_by(self, token: str) -> ColumnElement[bool]:
        return self.token == token

    def held_by_claimant(self, claimant: Claimant) -> ColumnElement[bool]:
        return self.token.like(f"{claimant.instance}-%")

    def claim(
        self, db: Session, *where: ColumnElement[bool], token: str, now: datetime, hold: timedelta, **values: Any
    ) -> int:
        """Take the open rows matching ``where`` (setting ``values`` too); return how many this call took.

        Does not commit: the caller commits the claim, alone or with what else it writes.
        """
        statement = (
            update(table_of(self.model))
            .where(*where, self.open(now))
            .values({self.token.key: token, self.until.key: now + hold, **values})
        )
        return self._execute(db, statement)

    def release(self, db: Session, *where: ColumnElement[bool], **values: Any) -> int:
        """Clear the lease of the rows matching ``where`` (setting ``values`` too); return how many. No commit."""
        statement = (
            update(table_of(self.model)).where(*where).values({self.token.key: None, self.until.key: None, **values})
        )
        return self._execute(db, statement)

    @staticmethod
    def _execute(db: Session, statement: Update) -> int:
        """Run on the session's connection, as Core: the rows in the session are left as they are (as with
        ``synchronize_session=False``) and the ORM's UPDATE path, which cost about as much as the statement, is
        skipped."""
        return cast("CursorResult[Any]", db.connection().execute(statement)).rowcount
