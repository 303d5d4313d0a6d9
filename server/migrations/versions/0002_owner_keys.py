"""owner keys hold (tenant, user) from the host application

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column) of every owner key, widened from 64 characters to hold host-issued (tenant, user) pairs.
OWNER_COLUMNS = (
    ("upload_sessions", "owner_id"),
    ("outbox_events", "owner_id"),
    ("user_profiles", "user_id"),
    ("push_subscriptions", "user_id"),
    ("notification_items", "user_id"),
    ("notification_messages", "user_id"),
)


def upgrade() -> None:
    for table, column in OWNER_COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.String(length=64), type_=sa.String(length=800))


def downgrade() -> None:
    for table, column in OWNER_COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.String(length=800), type_=sa.String(length=64))
