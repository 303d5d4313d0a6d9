"""The schema is versioned: migrations build exactly what the models describe, and re-running them changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from server.db import Database
from server.migrate import alembic_config, migrate, target_metadata
from server.models import UserProfile


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def schema_drift(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, target_metadata()))


def test_a_fresh_database_gets_exactly_the_models_schema(database: Database) -> None:
    migrate(database.engine)
    assert schema_drift(database) == [], "a model changed without a migration: alembic revision --autogenerate"
    with database.engine.connect() as connection:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head


def test_migrating_again_changes_nothing_and_keeps_the_data(database: Database) -> None:
    migrate(database.engine)
    with database.sessions() as session:
        session.add(UserProfile(user_id="u1", email="a@example.com"))
        session.commit()
    migrate(database.engine)
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT email FROM user_profiles")).scalar_one() == "a@example.com"


def test_a_database_made_before_migrations_is_adopted(database: Database) -> None:
    # What the server made before it had migrations: create_all of the first revision's models, no version table.
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("DROP TABLE alembic_version"))
    migrate(database.engine)
    assert "alembic_version" in inspect(database.engine).get_table_names()
    assert schema_drift(database) == []


def test_a_0001_database_keeps_its_rows_when_owner_keys_widen(database: Database) -> None:
    """Revision 0002 widens owner keys to hold a host's (tenant, user); existing anonymous owners stay."""
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "INSERT INTO user_profiles (user_id, email_notifications, push_notifications, "
                "updated_at) VALUES ('anon-1', TRUE, TRUE, '2026-01-01 00:00:00')"
            )
        )
    migrate(database.engine)
    long_owner = "h:" + "t" * 380 + ":" + "u" * 380
    with database.sessions() as session:
        session.add(UserProfile(user_id=long_owner))
        session.commit()
        assert sorted(session.scalars(select(UserProfile.user_id))) == sorted(["anon-1", long_owner])
    assert schema_drift(database) == []
