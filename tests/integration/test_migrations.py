"""The Alembic revisions build exactly the schema of the models, and tear it down again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pymager.adapters.db import make_engine, migrate
from pymager.adapters.db.models import Base


def schema_differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_builds_the_schema_of_the_models(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    assert schema_differences(empty_database_url) == []
    assert table_names(empty_database_url) == {"alembic_version", "originals", "derived"}


def test_downgrade_base_removes_every_table_and_upgrade_rebuilds_them(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    migrate.downgrade(empty_database_url, "base")
    assert table_names(empty_database_url) == {"alembic_version"}

    migrate.upgrade(empty_database_url)
    assert schema_differences(empty_database_url) == []


def test_head_revision_is_the_current_revision_after_upgrade(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(empty_database_url)
        assert migrate.current_revision(engine) == migrate.head_revision() == "0001"
    finally:
        engine.dispose()
