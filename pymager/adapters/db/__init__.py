"""The SQL registry: SQLAlchemy models, repositories, the unit of work and Alembic migrations."""

from __future__ import annotations

from pymager.adapters.db.uow import SqlRegistry, SqlUnitOfWork, make_engine

__all__ = ["SqlRegistry", "SqlUnitOfWork", "make_engine"]
