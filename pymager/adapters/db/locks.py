"""Generation locks as PostgreSQL advisory locks, for registries shared by several hosts.

The holder keeps a session-level ``pg_advisory_lock`` on a connection of its own for the whole
generation; PostgreSQL frees it when that session ends, so a host or process that dies frees the
image at once. Waiters take a transaction-level *shared* lock bounded by ``lock_timeout``: all of them
wake together when the holder releases, and none blocks the others.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, Engine, exc, text
from zope.interface import implementer

from pymager.adapters.db.uow import translate_errors
from pymager.domain import DerivedSpec
from pymager.interfaces import IGenerationLocks, IHeldLock

_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"


def lock_key(spec: DerivedSpec) -> int:
    """A signed 64-bit advisory lock key for ``spec`` (a hash of its canonical name)."""
    digest = hashlib.sha256(f"pymager:{spec.key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@implementer(IHeldLock)
class HeldAdvisoryLock:
    def __init__(self, connection: Connection, key: int) -> None:
        self._connection: Connection | None = connection
        self._key = key

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            connection.commit()
        except exc.SQLAlchemyError:
            connection.invalidate()  # ending the session is what frees a session lock for sure
        finally:
            connection.close()


@implementer(IGenerationLocks)
class AdvisoryLocks:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def try_acquire(self, spec: DerivedSpec) -> HeldAdvisoryLock | None:
        key = lock_key(spec)
        with translate_errors():
            connection = self._engine.connect()
            try:
                taken = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
                ).scalar_one()
                connection.commit()  # ends the transaction; the session-level lock stays
            except BaseException:
                connection.close()
                raise
        if not taken:
            connection.close()
            return None
        return HeldAdvisoryLock(connection, key)

    def wait(self, spec: DerivedSpec, timeout: float) -> bool:
        milliseconds = max(1, int(timeout * 1000))
        with translate_errors(), self._engine.connect() as connection:
            try:
                # SET LOCAL: both settings end with this transaction, before the connection is reused.
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
                connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds + 1000}")
                connection.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": lock_key(spec)})
            except exc.OperationalError as error:
                if getattr(error.orig, "pgcode", None) in (_LOCK_NOT_AVAILABLE, _QUERY_CANCELED):
                    return False
                raise
            finally:
                connection.rollback()  # frees the shared lock: waiting was all it was for
        return True
