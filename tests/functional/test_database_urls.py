"""The database URLs people write: ``postgresql://`` and ``postgres://`` migrate and serve on psycopg2;
an unsupported driver stops start-up and ``--migrate`` with one line that says what to write instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from pymager.adapters.db import make_engine, migrate
from tests import images
from tests.functional.conftest import free_port, start_server, stop_and_check_log, upload, write_config
from tests.functional.test_startup import refusal, run_standalone


def revision_of(database_url: str) -> str | None:
    engine = make_engine(database_url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_url_without_driver_migrates_and_serves(
    tmp_path: Path, make_postgres_database: Callable[[], str], scheme: str, image_id: str
) -> None:
    url = make_url(make_postgres_database()).set(drivername=scheme).render_as_string(hide_password=False)
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", url, free_port())

    migrated = run_standalone(tmp_path, "--config", str(config), "--migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert revision_of(url) == migrate.head_revision()
    server = start_server(tmp_path / "server", url)
    try:
        original = images.jpeg()
        assert upload(server, image_id, original).status_code == 201
        assert requests.get(server.url(f"/original/{image_id}"), timeout=10).content == original
        # Generating takes a PostgreSQL advisory lock on a connection of its own.
        derived = requests.get(server.url(f"/derived/{image_id}-32x24.jpg"), timeout=30)
        assert derived.status_code == 200, derived.text
    finally:
        stop_and_check_log(server)


@pytest.mark.parametrize(
    ("url", "shown", "reason"),
    [
        (
            "postgresql+asyncpg://pymager:secret@127.0.0.1:1/x",
            "postgresql+asyncpg://pymager:***@127.0.0.1:1/x",
            "driver asyncpg is not supported; write postgresql://pymager:***@127.0.0.1:1/x (psycopg2)",
        ),
        ("mysql://pymager@127.0.0.1:1/x", "mysql://pymager@127.0.0.1:1/x", "database mysql is not supported"),
        ("registry.sqlite3", "registry.sqlite3", "not a database URL; write postgresql://"),
    ],
)
@pytest.mark.parametrize("action", [[], ["--migrate"]], ids=["serve", "migrate"])
def test_unsupported_database_url_is_refused_in_one_line(
    tmp_path: Path, url: str, shown: str, reason: str, action: list[str]
) -> None:
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", url, free_port())

    line = refusal(run_standalone(tmp_path, "--config", str(config), *action))

    assert line.startswith(f"pymager: database_url = {shown!r}: {reason}")
    assert "secret" not in line
    assert not (tmp_path / "data").exists()  # refused before anything was created
