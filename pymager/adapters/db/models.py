"""The registry's tables, declared with SQLAlchemy 2.x typed mappings.

Every constraint and index is named through ``Base.metadata``'s naming convention, so Alembic revisions
can refer to them by the same names on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    Writes refuse naive datetimes and store UTC; reads of naive values (SQLite keeps no offset) are
    declared UTC, and aware values are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the registry stores aware UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OriginalRow(Base):
    """One uploaded original. ``status`` is an ``OriginalStatus`` value, ``format`` an
    ``ImageFormat`` value."""

    __tablename__ = "originals"
    __table_args__ = (
        CheckConstraint("status IN ('ready', 'deleting')", name="status"),
        CheckConstraint("focus_x BETWEEN 0 AND 1 AND focus_y BETWEEN 0 AND 1", name="focus"),
        CheckConstraint("(animated IS NULL) = (alpha IS NULL)", name="traits"),
        CheckConstraint("(upright_width IS NULL) = (upright_height IS NULL)", name="upright"),
        CheckConstraint("(thumbhash IS NULL) = (colour IS NULL)", name="placeholder"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))
    # The focal point, fractions of the upright picture (originals stored before it existed: centre).
    focus_x: Mapped[float] = mapped_column(Float, server_default="0.5")
    focus_y: Mapped[float] = mapped_column(Float, server_default="0.5")
    # Whether it animates and has transparency (what an ``auto`` URL's format is chosen from); NULL for
    # originals stored before they were recorded, filled on their first ``auto`` request.
    animated: Mapped[bool | None] = mapped_column(Boolean)
    alpha: Mapped[bool | None] = mapped_column(Boolean)
    # The size once EXIF orientation is applied, a ThumbHash (base64) and the dominant colour (#rrggbb);
    # NULL likewise for originals stored before.
    upright_width: Mapped[int | None] = mapped_column(Integer)
    upright_height: Mapped[int | None] = mapped_column(Integer)
    thumbhash: Mapped[str | None] = mapped_column(String(64))
    colour: Mapped[str | None] = mapped_column(String(7))
    # The long sides of its reduced copies, largest first ("3000,640"; "": none needed); NULL for
    # originals stored before they were made (not yet backfilled).
    reduced: Mapped[str | None] = mapped_column(String(64))
    # Purges of its derived images so far (``Original.derived_epoch``).
    derived_epoch: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DerivedRow(Base):
    """One derived image, claimed (``pending``, with an owner) then ``ready`` (with its file's size and
    SHA-256). ``mode`` is a ``Mode`` value; a 0 side (unbounded) is a fit's."""

    __tablename__ = "derived"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'ready')", name="status"),
        CheckConstraint("mode IN ('fill', 'fit', 'pad')", name="mode"),
        CheckConstraint("status = 'pending' OR (bytes IS NOT NULL AND checksum IS NOT NULL)", name="ready"),
        Index(None, "status", "claimed_at"),
    )

    original_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("originals.id", ondelete="CASCADE"), primary_key=True
    )
    width: Mapped[int] = mapped_column(Integer, primary_key=True)
    height: Mapped[int] = mapped_column(Integer, primary_key=True)
    format: Mapped[str] = mapped_column(String(8), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), primary_key=True, server_default="fill")
    status: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(64))
    # The size of the picture as made (a fit's is not its W×H); NULL while pending, and for images made
    # before it was kept.
    produced_width: Mapped[int | None] = mapped_column(Integer)
    produced_height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PurgeNoticeRow(Base):
    """A purge notice waiting for delivery (the outbox): written in the transaction of the DELETE (or
    purge) it announces, removed once the webhook accepted it. No foreign key: it outlives its original."""

    __tablename__ = "purge_notices"
    # AUTOINCREMENT on SQLite: without it a row id is reused once its row is gone, and receivers
    # tell deliveries apart by number.
    __table_args__ = (Index(None, "due_at"), {"sqlite_autoincrement": True})

    # INTEGER PRIMARY KEY on SQLite (its row id), a BIGSERIAL-like identity elsewhere.
    number: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    original_id: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
