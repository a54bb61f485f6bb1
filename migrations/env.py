"""Alembic environment of pymager.

The database URL comes from ``config.attributes["url"]`` (set by ``pymager.adapters.db.migrate``), else
``-x url=…``, else the ``sqlalchemy.url`` option, else the pymager settings file (``$PYMAGER_CONFIG`` or
``./pymager.ini``), so ``alembic upgrade head`` from the repository root works too. Online and offline,
the URL is read as the server reads it (``postgresql://`` means psycopg2).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, text

from pymager.adapters.db.models import Base
from pymager.adapters.db.uow import make_engine
from pymager.adapters.db.urls import engine_url

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or _main_option("sqlalchemy.url")
    )
    if url:
        return str(url)
    from pymager.config import config_path, load_settings

    return load_settings(config_path()).database_url


def _main_option(name: str) -> str | None:
    # Without an alembic.ini (pyproject.toml only) there is no main section to read from.
    if not config.file_config.has_section(config.config_ini_section):
        return None
    return config.get_main_option(name)


def configure(**options: Any) -> None:
    context.configure(target_metadata=target_metadata, compare_type=True, **options)


def run_migrations_offline() -> None:
    url = engine_url(database_url())
    configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def check_sqlite_foreign_keys(connection: Connection) -> None:
    """Foreign keys are off while migrating SQLite (batch table copies would cascade); verify them."""
    violations = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
    if violations:
        raise RuntimeError(f"migration left rows violating foreign keys: {violations[:5]}")


def run_migrations_online() -> None:
    engine = make_engine(database_url(), sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            # make_engine emits BEGIN itself on SQLite, so its DDL is transactional as well.
            configure(connection=connection, render_as_batch=sqlite, transactional_ddl=True)
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    check_sqlite_foreign_keys(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
