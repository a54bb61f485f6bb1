"""Engines, the unit of work and the registry over SQLAlchemy.

SQLite: the driver's own transaction handling is disabled and a "begin" event emits ``BEGIN`` (readers)
or ``BEGIN IMMEDIATE`` (writers: the write lock is taken at once, so read-then-write sequences never fail
upgrading a shared lock). PostgreSQL: ordinary transactions, bounded by statement and lock timeouts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker
from zope.interface import implementer

from pymager.adapters.db.migrate import current_revision, head_revision
from pymager.adapters.db.repository import SqlDerivedRepository, SqlOriginalRepository, SqlPurgeOutbox
from pymager.adapters.db.turns import WriterTurns
from pymager.adapters.db.urls import engine_url
from pymager.errors import ServiceUnavailable
from pymager.interfaces import IRegistry, IUnitOfWork

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_TIMEOUT_MS = 10_000
RETRY_AFTER = 5
_WRITE_OPTION = "pymager_write"


def make_engine(url: str, *, sqlite_foreign_keys: bool = True) -> Engine:
    """An engine for ``url`` (SQLite, or PostgreSQL through psycopg2) set up as the registry needs.

    ``url`` is read by ``engine_url``: ``postgresql://`` means psycopg2, and an unsupported driver
    raises ``UnsupportedDatabaseURL``. ``sqlite_foreign_keys=False`` is for migrations only: SQLite batch
    migrations copy and drop tables, and with foreign keys on, dropping ``originals`` would
    cascade-delete every derived row.
    """
    parsed = engine_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, foreign_keys=sqlite_foreign_keys)
    return create_engine(
        parsed,
        pool_size=10,
        max_overflow=10,
        pool_timeout=10,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": 5,
            "options": f"-c statement_timeout={POSTGRES_TIMEOUT_MS}"
            f" -c lock_timeout={POSTGRES_TIMEOUT_MS}"
            # The server notices a vanished client (a dead host) within about a minute and ends its
            # session, freeing the generation locks it held; TCP's default is two hours.
            " -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )


def _sqlite_engine(url: URL, *, foreign_keys: bool) -> Engine:
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_timeout=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Hand transaction control to SQLAlchemy: the "begin" listener below emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _is_unavailable(error: BaseException) -> bool:
    if isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        return True
    if isinstance(error, exc.DisconnectionError):
        return True
    return isinstance(error, exc.DBAPIError) and error.connection_invalidated


def _unavailable(error: BaseException) -> ServiceUnavailable:
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = lines[0] if lines else type(error).__name__
    return ServiceUnavailable(f"the image registry is unavailable: {detail}", retry_after=RETRY_AFTER)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn the database being unreachable, locked or timing out into ``ServiceUnavailable``."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        if _is_unavailable(error):
            raise _unavailable(error) from error
        raise


@implementer(IUnitOfWork)
class SqlUnitOfWork:
    """One transaction: ``with registry.unit_of_work(write=True) as uow: …; uow.commit()``."""

    originals: SqlOriginalRepository
    derived: SqlDerivedRepository
    outbox: SqlPurgeOutbox

    def __init__(
        self, session_factory: sessionmaker[Session], *, write: bool, writers: WriterTurns | None = None
    ) -> None:
        self._session_factory = session_factory
        self._write = write
        self._writers = writers if write else None
        self._session: Session | None = None
        self._committed = False

    def __enter__(self) -> SqlUnitOfWork:
        if self._session is not None:
            raise RuntimeError("a unit of work cannot be entered twice")
        if self._writers is not None:
            try:
                turn = self._writers.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            except OSError as error:
                raise ServiceUnavailable(
                    f"the image registry is unavailable: {error.strerror}", retry_after=RETRY_AFTER
                ) from None
            if not turn:
                raise ServiceUnavailable(
                    "the image registry is unavailable: its writers are busy", retry_after=RETRY_AFTER
                )
        session = self._session_factory()
        self._session = session
        self._committed = False
        self.originals = SqlOriginalRepository(session)
        self.derived = SqlDerivedRepository(session)
        self.outbox = SqlPurgeOutbox(session)
        try:
            with translate_errors():
                # Connect and BEGIN now, so a writer holds the write lock before its first read.
                session.connection(execution_options={_WRITE_OPTION: self._write})
        except BaseException:
            self._close(rollback=True, failing=True)
            raise
        return self

    def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit() outside of the unit of work's with-block")
        with translate_errors():
            self._session.commit()
        self._committed = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close(rollback=not self._committed, failing=exc is not None)
        if exc is not None and _is_unavailable(exc):
            raise _unavailable(exc) from exc

    def _close(self, *, rollback: bool, failing: bool) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            with translate_errors():
                if rollback:
                    session.rollback()
                session.close()
        except Exception:
            if not failing:
                raise
            # The body already failed; its error is the one to report.
            logger.warning("closing a failed unit of work failed too", exc_info=True)
        finally:
            if self._writers is not None:
                self._writers.release()


def _writer_turns(engine: Engine) -> WriterTurns | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return WriterTurns(None)
    return WriterTurns(Path(f"{database}.writers"))


@implementer(IRegistry)
class SqlRegistry:
    """The image registry over an engine made by ``make_engine``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session_factory = sessionmaker(engine, expire_on_commit=False)
        # SQLite's writers take turns, across this host's threads and processes (turns.py).
        self._writers = _writer_turns(engine)
        self._head: str | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    def unit_of_work(self, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._session_factory, write=write, writers=self._writers)

    def ping(self) -> None:
        with translate_errors():
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            current = current_revision(self._engine)
        if self._head is None:
            self._head = head_revision()
        if current != self._head:
            raise ServiceUnavailable(
                f"database schema is at revision {current or 'none'}, expected {self._head}: "
                "run `pymager_standalone.py --migrate`",
                retry_after=RETRY_AFTER,
            )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()
