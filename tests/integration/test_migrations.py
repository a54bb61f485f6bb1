"""The Alembic revisions build exactly the schema of the models, and tear it down again."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

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
    assert table_names(empty_database_url) == {"alembic_version", "originals", "derived", "purge_notices"}


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
        assert migrate.current_revision(engine) == migrate.head_revision() == "0005"
    finally:
        engine.dispose()


def test_0002_keeps_existing_rows_as_fill_and_centre_and_downgrades_to_0001(empty_database_url: str) -> None:
    """Rows written under 0001 mean what they meant: derived images are fill, originals' focus is the
    centre; a downgrade drops what 0001 cannot name (fit and pad rows) and keeps the rest."""
    migrate.upgrade(empty_database_url, "0001")
    engine = make_engine(empty_database_url)
    now = "2024-01-01 00:00:00"
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO originals (id, status, format, width, height, bytes, checksum, created_at,"
                    " updated_at) VALUES ('a', 'ready', 'JPEG', 10, 10, 5, 'c', :now, :now)"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO derived (original_id, width, height, format, status, owner, claimed_at,"
                    " bytes, checksum, created_at, updated_at)"
                    " VALUES ('a', 5, 5, 'JPEG', 'ready', 'o', :now, 3, 'd', :now, :now)"
                ),
                {"now": now},
            )
        migrate.upgrade(empty_database_url)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT focus_x, focus_y FROM originals")).one() == (0.5, 0.5)
            assert connection.execute(text("SELECT mode FROM derived")).scalar_one() == "fill"
            connection.execute(
                text(
                    "INSERT INTO derived (original_id, width, height, format, mode, status, owner,"
                    " claimed_at, created_at, updated_at)"
                    " VALUES ('a', 5, 5, 'JPEG', 'fit', 'pending', 'o', :now, :now, :now)"
                ),
                {"now": now},
            )
        migrate.downgrade(empty_database_url, "0001")
        with engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM derived")).scalar_one() == 1
            assert "mode" not in {column["name"] for column in inspect(connection).get_columns("derived")}
    finally:
        engine.dispose()


def test_0003_leaves_existing_originals_traits_unknown_and_refuses_half_known_ones(
    empty_database_url: str,
) -> None:
    """Originals stored before 0003 have no traits (NULL: found out on their first ``auto`` request);
    a row never knows one trait without the other; a downgrade drops both."""
    migrate.upgrade(empty_database_url, "0002")
    engine = make_engine(empty_database_url)
    insert = (
        "INSERT INTO originals (id, status, format, width, height, bytes, checksum, created_at,"
        " updated_at{columns}) VALUES (:id, 'ready', 'JPEG', 10, 10, 5, 'c', :now, :now{values})"
    )
    now = "2024-01-01 00:00:00"
    try:
        with engine.begin() as connection:
            connection.execute(text(insert.format(columns="", values="")), {"id": "old", "now": now})
        migrate.upgrade(empty_database_url)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT animated, alpha FROM originals")).one() == (None, None)
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                text(insert.format(columns=", animated", values=", :animated")),
                {"id": "half", "now": now, "animated": True},
            )
        migrate.downgrade(empty_database_url, "0002")
        with engine.begin() as connection:
            columns = {column["name"] for column in inspect(connection).get_columns("originals")}
            assert {"animated", "alpha"}.isdisjoint(columns)
    finally:
        engine.dispose()
