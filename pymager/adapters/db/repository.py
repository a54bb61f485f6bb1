"""Repositories of originals and derived images over one SQLAlchemy ``Session``. They never commit:
the unit of work that owns the session does.

The statements of a generation (``SqlOriginalRepository.get``/``lock``, ``SqlDerivedRepository.get``/
``claim``/``mark_ready``) are Core statements built once, with bound parameters, run on the session's
connection: on SQLite the writer's lock is the whole database's, held from ``BEGIN IMMEDIATE`` to the
commit, and the ORM's work per statement (building the statement and its cache key, the identity map,
an instance per row) made a generation's two transactions about four times as long
(benchmarks/README.md).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from zope.interface import implementer

from pymager.adapters.db.models import DerivedRow, OriginalRow, PurgeNoticeRow
from pymager.domain import (
    DerivedRecord,
    DerivedSpec,
    DerivedStatus,
    Focus,
    ImageFormat,
    ImageId,
    ImageInfo,
    Mode,
    Original,
    OriginalRecord,
    OriginalStatus,
    Placeholder,
    PurgeNotice,
    Size,
    Traits,
)
from pymager.interfaces import IDerivedRepository, IOriginalRepository, IPurgeOutbox

_ORIGINALS = cast(Table, OriginalRow.__table__)
_DERIVED = cast(Table, DerivedRow.__table__)
_ORIGINAL = select(_ORIGINALS).where(_ORIGINALS.c.id == bindparam("image_id"))
_ORIGINAL_FOR_UPDATE = _ORIGINAL.with_for_update()
# A derived row by its key, with parameters named apart from the columns an UPDATE sets.
_DERIVED_KEY = and_(
    _DERIVED.c.original_id == bindparam("key_original_id"),
    _DERIVED.c.width == bindparam("key_width"),
    _DERIVED.c.height == bindparam("key_height"),
    _DERIVED.c.format == bindparam("key_format"),
    _DERIVED.c.mode == bindparam("key_mode"),
)
_DERIVED_ROW = select(_DERIVED).where(_DERIVED_KEY)
_MARK_READY = (
    update(_DERIVED)
    .where(_DERIVED_KEY, _DERIVED.c.owner == bindparam("key_owner"))
    .values(
        status=DerivedStatus.READY.value,
        bytes=bindparam("bytes"),
        checksum=bindparam("checksum"),
        produced_width=bindparam("produced_width"),
        produced_height=bindparam("produced_height"),
        updated_at=bindparam("updated_at"),
    )
)


@functools.cache
def _insert_ignoring(dialect: str, table: Table) -> Executable:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"the registry does not support the {dialect!r} dialect")


def _insert_ignoring_conflicts(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING`` in the session's dialect; return whether a row was inserted."""
    statement = _insert_ignoring(session.get_bind().dialect.name, table)
    result = cast("CursorResult[Any]", session.connection().execute(statement, values))
    return result.rowcount == 1


def _key_parameters(spec: DerivedSpec) -> dict[str, Any]:
    return {
        "key_original_id": str(spec.image_id),
        "key_width": spec.size.width,
        "key_height": spec.size.height,
        "key_format": spec.format.value,
        "key_mode": spec.mode.value,
    }


def _rowcount(session: Session, statement: Executable) -> int:
    """The number of rows an INSERT, UPDATE or DELETE matched."""
    result = cast("CursorResult[Any]", session.execute(statement))
    return result.rowcount


def _original_record(row: OriginalRow | Row[Any]) -> OriginalRecord:
    original = Original(
        image_id=ImageId(row.id),
        format=ImageFormat(row.format),
        width=row.width,
        height=row.height,
        bytes=row.bytes,
        checksum=row.checksum,
        created=row.created_at,
        focus=Focus(row.focus_x, row.focus_y),
        traits=None if row.animated is None or row.alpha is None else Traits(row.animated, row.alpha),
        upright=None
        if row.upright_width is None or row.upright_height is None
        else Size(row.upright_width, row.upright_height),
        placeholder=None
        if row.thumbhash is None or row.colour is None
        else Placeholder(row.thumbhash, row.colour),
        reduced=None if row.reduced is None else _sides(row.reduced),
        derived_epoch=row.derived_epoch,
    )
    return OriginalRecord(original=original, status=OriginalStatus(row.status))


def _sides(text: str) -> tuple[int, ...]:
    return tuple(int(side) for side in text.split(",") if side)


def _sides_column(sides: tuple[int, ...] | None) -> str | None:
    return None if sides is None else ",".join(str(side) for side in sides)


def _fact_columns(
    traits: Traits | None, upright: Size | None, placeholder: Placeholder | None
) -> dict[str, Any]:
    return {
        "animated": None if traits is None else traits.animated,
        "alpha": None if traits is None else traits.alpha,
        "upright_width": None if upright is None else upright.width,
        "upright_height": None if upright is None else upright.height,
        "thumbhash": None if placeholder is None else placeholder.thumbhash,
        "colour": None if placeholder is None else placeholder.colour,
    }


def _derived_record(row: DerivedRow | Row[Any]) -> DerivedRecord:
    size = Size(row.width, row.height)
    spec = DerivedSpec(ImageId(row.original_id), size, ImageFormat(row.format), Mode(row.mode))
    return DerivedRecord(
        spec=spec,
        status=DerivedStatus(row.status),
        owner=row.owner,
        claimed_at=row.claimed_at,
        bytes=row.bytes,
        checksum=row.checksum,
        produced=None
        if row.produced_width is None or row.produced_height is None
        else Size(row.produced_width, row.produced_height),
        created=row.updated_at if row.status == DerivedStatus.READY.value else None,
    )


@implementer(IOriginalRepository)
class SqlOriginalRepository:
    """Rows of ``originals`` inside the session's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, image_id: ImageId) -> OriginalRecord | None:
        return self._select(image_id, for_update=False)

    def lock(self, image_id: ImageId) -> OriginalRecord | None:
        return self._select(image_id, for_update=True)

    def add(self, original: Original) -> bool:
        values = {
            "id": str(original.image_id),
            "status": OriginalStatus.READY.value,
            "format": original.format.value,
            "width": original.width,
            "height": original.height,
            "bytes": original.bytes,
            "checksum": original.checksum,
            "focus_x": original.focus.x,
            "focus_y": original.focus.y,
            **_fact_columns(original.traits, original.upright, original.placeholder),
            "reduced": _sides_column(original.reduced),
            "derived_epoch": original.derived_epoch,
            "created_at": original.created,
            "updated_at": original.created,
        }
        return _insert_ignoring_conflicts(self._session, _ORIGINALS, values)

    def set_facts(self, image_id: ImageId, info: ImageInfo) -> None:
        upright = info.upright or Size(info.width, info.height)
        statement = (
            update(OriginalRow)
            .where(OriginalRow.id == str(image_id))
            .values(_fact_columns(info.traits, upright, info.placeholder))
            .execution_options(synchronize_session=False)
        )
        self._session.execute(statement)

    def set_reduced(self, image_id: ImageId, sides: tuple[int, ...]) -> None:
        statement = (
            update(OriginalRow)
            .where(OriginalRow.id == str(image_id))
            .values(reduced=_sides_column(sides))
            .execution_options(synchronize_session=False)
        )
        self._session.execute(statement)

    def list_page(self, after: ImageId | None, limit: int) -> list[OriginalRecord]:
        statement = select(OriginalRow).where(OriginalRow.status == OriginalStatus.READY.value)
        if after is not None:
            statement = statement.where(OriginalRow.id > str(after))
        rows = self._session.scalars(statement.order_by(OriginalRow.id).limit(limit))
        return [_original_record(row) for row in rows]

    def set_status(self, image_id: ImageId, status: OriginalStatus, now: datetime) -> None:
        statement = (
            update(OriginalRow)
            .where(OriginalRow.id == str(image_id))
            .values(status=status.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        self._session.execute(statement)

    def remove(self, image_id: ImageId) -> None:
        for statement in (
            delete(DerivedRow).where(DerivedRow.original_id == str(image_id)),
            delete(OriginalRow).where(OriginalRow.id == str(image_id)),
        ):
            self._session.execute(statement.execution_options(synchronize_session=False))

    def renew_derived(self, image_id: ImageId) -> None:
        statement = (
            update(OriginalRow)
            .where(OriginalRow.id == str(image_id))
            .values(derived_epoch=OriginalRow.derived_epoch + 1)
            .execution_options(synchronize_session=False)
        )
        self._session.execute(statement)

    def list_all(self) -> list[OriginalRecord]:
        rows = self._session.scalars(select(OriginalRow).order_by(OriginalRow.id))
        return [_original_record(row) for row in rows]

    def _select(self, image_id: ImageId, *, for_update: bool) -> OriginalRecord | None:
        statement = _ORIGINAL_FOR_UPDATE if for_update else _ORIGINAL
        row = self._session.connection().execute(statement, {"image_id": str(image_id)}).one_or_none()
        return None if row is None else _original_record(row)


@implementer(IDerivedRepository)
class SqlDerivedRepository:
    """Rows of ``derived`` inside the session's transaction. Ownership changes are single
    compare-and-set statements on ``owner``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, spec: DerivedSpec) -> DerivedRecord | None:
        row = self._session.connection().execute(_DERIVED_ROW, _key_parameters(spec)).one_or_none()
        return None if row is None else _derived_record(row)

    def list_ready(self, image_id: ImageId) -> list[DerivedRecord]:
        statement = (
            select(DerivedRow)
            .where(DerivedRow.original_id == str(image_id), DerivedRow.status == DerivedStatus.READY.value)
            .order_by(DerivedRow.width, DerivedRow.height, DerivedRow.mode, DerivedRow.format)
        )
        return [_derived_record(row) for row in self._session.scalars(statement)]

    def claim(self, spec: DerivedSpec, owner: str, now: datetime) -> bool:
        values = {
            "original_id": str(spec.image_id),
            "width": spec.size.width,
            "height": spec.size.height,
            "format": spec.format.value,
            "mode": spec.mode.value,
            "status": DerivedStatus.PENDING.value,
            "owner": owner,
            "claimed_at": now,
            "bytes": None,
            "checksum": None,
            "created_at": now,
            "updated_at": now,
        }
        return _insert_ignoring_conflicts(self._session, _DERIVED, values)

    def take_over(self, spec: DerivedSpec, expected_owner: str, owner: str, now: datetime) -> bool:
        return self._update(
            and_(_is(spec), DerivedRow.owner == expected_owner),
            status=DerivedStatus.PENDING.value,
            owner=owner,
            claimed_at=now,
            bytes=None,
            checksum=None,
            updated_at=now,
        )

    def mark_ready(
        self,
        spec: DerivedSpec,
        owner: str,
        size_bytes: int,
        checksum: str,
        now: datetime,
        produced: Size | None = None,
    ) -> bool:
        parameters = {
            **_key_parameters(spec),
            "key_owner": owner,
            "bytes": size_bytes,
            "checksum": checksum,
            "produced_width": None if produced is None else produced.width,
            "produced_height": None if produced is None else produced.height,
            "updated_at": now,
        }
        result = cast("CursorResult[Any]", self._session.connection().execute(_MARK_READY, parameters))
        return result.rowcount == 1

    def release(self, spec: DerivedSpec, owner: str) -> None:
        statement = delete(DerivedRow).where(
            _is(spec), DerivedRow.owner == owner, DerivedRow.status == DerivedStatus.PENDING.value
        )
        self._session.execute(statement.execution_options(synchronize_session=False))

    def remove(self, spec: DerivedSpec) -> None:
        statement = delete(DerivedRow).where(_is(spec))
        self._session.execute(statement.execution_options(synchronize_session=False))

    def list_all(self) -> list[DerivedRecord]:
        order = (
            DerivedRow.original_id,
            DerivedRow.width,
            DerivedRow.height,
            DerivedRow.format,
            DerivedRow.mode,
        )
        return [_derived_record(row) for row in self._session.scalars(select(DerivedRow).order_by(*order))]

    def _update(self, condition: ColumnElement[bool], **values: Any) -> bool:
        statement = (
            update(DerivedRow).where(condition).values(**values).execution_options(synchronize_session=False)
        )
        return _rowcount(self._session, statement) == 1


@implementer(IPurgeOutbox)
class SqlPurgeOutbox:
    """Rows of ``purge_notices`` inside the session's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, image_id: ImageId, body: str, now: datetime) -> None:
        self._session.execute(
            insert(PurgeNoticeRow).values(
                original_id=str(image_id), body=body, attempts=0, due_at=now, created_at=now
            )
        )

    def due(self, now: datetime, limit: int) -> list[PurgeNotice]:
        statement = (
            select(
                PurgeNoticeRow.number,
                PurgeNoticeRow.original_id,
                PurgeNoticeRow.body,
                PurgeNoticeRow.attempts,
            )
            .where(PurgeNoticeRow.due_at <= now)
            .order_by(PurgeNoticeRow.due_at, PurgeNoticeRow.number)
            .limit(limit)
        )
        return [
            PurgeNotice(number, ImageId(original_id), body, attempts)
            for number, original_id, body, attempts in self._session.execute(statement)
        ]

    def lease(self, notice: PurgeNotice, until: datetime) -> bool:
        statement = (
            update(PurgeNoticeRow)
            .where(PurgeNoticeRow.number == notice.number, PurgeNoticeRow.attempts == notice.attempts)
            .values(attempts=notice.attempts + 1, due_at=until)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(self._session, statement) == 1

    def postpone(self, notice: PurgeNotice, until: datetime, error: str) -> None:
        statement = (
            update(PurgeNoticeRow)
            .where(PurgeNoticeRow.number == notice.number, PurgeNoticeRow.attempts == notice.attempts)
            .values(due_at=until, last_error=error[:200])
            .execution_options(synchronize_session=False)
        )
        self._session.execute(statement)

    def remove(self, number: int) -> None:
        statement = delete(PurgeNoticeRow).where(PurgeNoticeRow.number == number)
        self._session.execute(statement.execution_options(synchronize_session=False))

    def pending(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(PurgeNoticeRow)) or 0)


def _is(spec: DerivedSpec) -> ColumnElement[bool]:
    return and_(
        DerivedRow.original_id == str(spec.image_id),
        DerivedRow.width == spec.size.width,
        DerivedRow.height == spec.size.height,
        DerivedRow.format == spec.format.value,
        DerivedRow.mode == spec.mode.value,
    )
