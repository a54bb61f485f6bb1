"""Alembic, driven from code: the revisions live in the repository's top-level ``migrations/``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text


def _migrations_dir() -> Path:
    directory = Path(__file__).resolve().parents[3] / "migrations"
    if not (directory / "env.py").is_file():
        raise RuntimeError(
            f"Alembic migrations not found at {directory}: pymager must run from its source checkout"
        )
    return directory


MIGRATIONS_DIR = _migrations_dir()
VERSION_TABLE = "alembic_version"


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` for ``migrations/`` and the database at ``url`` (passed to ``env.py`` as
    ``config.attributes["url"]``, so no ``%`` escaping is needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The single head revision of ``migrations/``."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions in {MIGRATIONS_DIR / 'versions'}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database at ``engine`` is at, or ``None`` when it was never migrated.

    Read straight from Alembic's version table: this runs on every health check, and Alembic's
    ``MigrationContext`` would log two INFO lines each time."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if len(versions) > 1:
        raise RuntimeError(f"the database has several Alembic heads: {', '.join(versions)}")
    return versions[0] if versions else None
