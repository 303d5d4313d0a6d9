"""The database schema, versioned with Alembic: the server brings it to the newest revision when it starts.

A new column or table is a new revision in ``server/migrations/versions`` (``alembic revision --autogenerate``
writes a draft from the models), so a deployed database moves forward instead of being recreated.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, inspect

from server.models import Base

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def target_metadata() -> MetaData:
    """Every model's table (:mod:`server.models` registers them all on ``Base``)."""
    return Base.metadata


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest revision; a fresh database gets the whole schema."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "upload_sessions" in tables and "alembic_version" not in tables:
            # Made by the versions before migrations (create_all of the first revision's models): adopt it.
            command.stamp(config, "0001")
        command.upgrade(config, "head")
