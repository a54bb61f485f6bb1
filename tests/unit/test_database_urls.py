"""Reading database URLs: what people write maps to psycopg2 or SQLite, anything else is refused in
one line that masks the password and says what to write instead."""

from __future__ import annotations

import sys

import pytest

from pymager.adapters.db import make_engine
from pymager.adapters.db.urls import UnsupportedDatabaseURL, engine_url, shown_url


@pytest.mark.parametrize(
    ("written", "connected"),
    [
        ("postgresql://user@host/db", "postgresql+psycopg2://user@host/db"),
        ("postgres://user@host/db", "postgresql+psycopg2://user@host/db"),
        ("postgres+psycopg2://user@host/db", "postgresql+psycopg2://user@host/db"),
        ("postgresql+psycopg2://user@host/db", "postgresql+psycopg2://user@host/db"),
        (
            "postgresql://us%40er:p%40ss@db.example:6543/images?sslmode=require&application_name=pymager",
            "postgresql+psycopg2://us%40er:p%40ss@db.example:6543/images"
            "?application_name=pymager&sslmode=require",
        ),
        ("postgresql:///db?host=/run/postgresql", "postgresql+psycopg2:///db?host=%2Frun%2Fpostgresql"),
    ],
)
def test_postgres_url_without_driver_uses_psycopg2_and_keeps_the_rest(written: str, connected: str) -> None:
    assert engine_url(written).render_as_string(hide_password=False) == connected


@pytest.mark.parametrize(
    "written",
    [
        "sqlite:////var/lib/pymager/registry.sqlite3",
        "sqlite:///relative.db",
        "sqlite://",
        "sqlite+pysqlite:///x",
    ],
)
def test_sqlite_url_is_kept_as_written(written: str) -> None:
    assert engine_url(written).render_as_string(hide_password=False) == written


def refusal(url: str) -> str:
    with pytest.raises(UnsupportedDatabaseURL) as caught:
        engine_url(url)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg", "pg8000"])
def test_other_postgres_driver_is_refused_with_the_psycopg2_spelling(driver: str) -> None:
    message = refusal(f"postgresql+{driver}://user:secret@host/db")

    assert message == (
        f"driver {driver} is not supported; write postgresql://user:***@host/db (psycopg2) or sqlite:///path"
    )


def test_other_sqlite_driver_is_refused_with_the_plain_spelling() -> None:
    assert refusal("sqlite+aiosqlite:///x.db") == "driver aiosqlite is not supported; write sqlite:///x.db"


@pytest.mark.parametrize("url", ["mysql://user:secret@host/db", "oracle+oracledb://h/x", "nosuch://h/x"])
def test_other_database_is_refused(url: str) -> None:
    message = refusal(url)

    assert message.endswith("is not supported; write postgresql://user@host/db (psycopg2) or sqlite:///path")
    assert "secret" not in message


@pytest.mark.parametrize("url", ["registry.sqlite3", "/var/lib/pymager/registry.sqlite3", "://x"])
def test_text_that_is_no_url_is_refused(url: str) -> None:
    assert refusal(url).startswith("not a database URL; write postgresql://")


def test_missing_driver_module_is_refused_naming_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # makes `import psycopg2` raise ImportError

    message = refusal("postgresql://user@host/db")

    assert message.startswith("driver psycopg2 cannot be imported (")
    assert message.endswith("): install psycopg2-binary")


def test_make_engine_refuses_what_engine_url_refuses() -> None:
    with pytest.raises(UnsupportedDatabaseURL, match="driver asyncpg is not supported"):
        make_engine("postgresql+asyncpg://user@host/db")


def test_make_engine_connects_a_bare_postgresql_url_with_psycopg2() -> None:
    engine = make_engine("postgresql://user@host/db")
    try:
        assert engine.dialect.driver == "psycopg2"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://user:secret@host/db", "postgresql+asyncpg://user:***@host/db"),
        ("postgresql://user@host/db?sslmode=require", "postgresql://user@host/db?sslmode=require"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("not a url", "not a url"),
    ],
)
def test_shown_url_masks_only_the_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown
