"""Alembic, driven from code.

The revisions live in the repository's top-level ``migrations/``, which setup.py installs as the package
``pymager._migrations``: found through the import system, it is the checkout's folder in an editable
install and a copy in site-packages otherwise. It is looked up when needed, not at import, so that
commands without a database (``--hash-key``) never depend on it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from pymager.adapters.db.urls import engine_url

MIGRATIONS_PACKAGE = "pymager._migrations"
VERSION_TABLE = "alembic_version"


def migrations_dir() -> Path:
    """The directory holding Alembic's ``env.py`` and ``versions/``."""
    try:
        directory = resources.files(MIGRATIONS_PACKAGE)
    except ModuleNotFoundError:
        raise RuntimeError(
            f"the Alembic migrations ({MIGRATIONS_PACKAGE}) are not installed: reinstall pymager"
        ) from None
    # Alembic reads revisions from a real directory, not from a zip archive.
    if not isinstance(directory, Path) or not (directory / "env.py").is_file():
        raise RuntimeError(f"the Alembic migrations are not at {directory}: reinstall pymager")
    return directory


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` for ``migrations/`` and the database at ``url`` (passed to ``env.py`` as
    ``config.attributes["url"]``, so no ``%`` escaping is needed)."""
    # Refused here already, before Alembic runs and logs anything, as make_engine would refuse it.
    engine_url(url)
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The single head revision of ``migrations/``."""
    directory = migrations_dir()
    head = ScriptDirectory(str(directory)).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions in {directory / 'versions'}")
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
