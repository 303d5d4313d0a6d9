"""The one clock of the server: aware UTC datetimes everywhere (the database stores them as UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
