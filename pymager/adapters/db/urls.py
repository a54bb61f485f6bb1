"""The database URLs pymager accepts, read the way people write them.

pymager installs and is tested with one driver per database: psycopg2 for PostgreSQL, the standard
library's sqlite3 for SQLite. SQLAlchemy 2.1 made psycopg 3 the default of a bare ``postgresql://``, so a
URL without a driver is given psycopg2 explicitly (``postgres://``, libpq's spelling, too). Any other
driver, or one whose module is missing, is refused before a connection is tried, saying what to write.
Both the server (``make_engine``) and the migrations (``migrations/env.py``) read URLs through here.
"""

from __future__ import annotations

from sqlalchemy import exc
from sqlalchemy.engine import URL, make_url

# backend → the one driver pymager uses with it, and what provides that driver's module
DRIVERS = {"postgresql": "psycopg2", "sqlite": "pysqlite"}
_PROVIDERS = {"psycopg2": "install psycopg2-binary", "pysqlite": "use a Python built with sqlite3"}
_BACKEND_ALIASES = {"postgres": "postgresql"}
_EXAMPLES = "postgresql://user@host/db (psycopg2) or sqlite:///path"


class UnsupportedDatabaseURL(ValueError):
    """pymager cannot use this URL; the message (one line, password masked) says what to write."""


def engine_url(url: str) -> URL:
    """``url`` as pymager connects to it: PostgreSQL with the psycopg2 driver, the rest kept as written.

    Raise ``UnsupportedDatabaseURL`` for anything but PostgreSQL/psycopg2 and SQLite/pysqlite, and when
    the driver's module cannot be imported."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise UnsupportedDatabaseURL(f"not a database URL; write {_EXAMPLES}") from None
    name, _, driver = parsed.drivername.partition("+")
    backend = _BACKEND_ALIASES.get(name, name)
    expected = DRIVERS.get(backend)
    if expected is None:
        raise UnsupportedDatabaseURL(f"database {name} is not supported; write {_EXAMPLES}")
    if driver and driver != expected:
        instead = _masked(parsed.set(drivername=backend))
        also = " (psycopg2) or sqlite:///path" if backend == "postgresql" else ""
        raise UnsupportedDatabaseURL(f"driver {driver} is not supported; write {instead}{also}")
    if backend == "postgresql":
        # Explicit, so SQLAlchemy's default driver (psycopg 3, not installed) is never chosen.
        parsed = parsed.set(drivername=f"{backend}+{expected}")
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as error:
        raise UnsupportedDatabaseURL(
            f"driver {expected} cannot be imported ({error}): {_PROVIDERS[expected]}"
        ) from None
    return parsed


def shown_url(url: str) -> str:
    """``url`` as written, for messages, with its password (if any) replaced by ``***``."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        return url
    return url if parsed.password is None else _masked(parsed)


def _masked(url: URL) -> str:
    return url.render_as_string(hide_password=True)
