"""The SQL registry against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, TypeVar

import pytest
from sqlalchemy import select
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pymager.adapters.db import SqlRegistry, make_engine, migrate
from pymager.adapters.db.models import OriginalRow
from pymager.adapters.db.repository import SqlDerivedRepository, SqlOriginalRepository
from pymager.adapters.filesystem import FileBlobStore
from pymager.adapters.locks import FileLocks
from pymager.adapters.metrics import PrometheusMetrics
from pymager.config import Settings
from pymager.domain import (
    DerivedRecord,
    DerivedSpec,
    DerivedStatus,
    ImageFormat,
    ImageId,
    ImageInfo,
    Original,
    OriginalStatus,
    Rendition,
    Size,
    Upload,
)
from pymager.errors import ServiceUnavailable
from pymager.interfaces import (
    IDerivedRepository,
    IImageProcessor,
    IOriginalRepository,
    IRegistry,
    IUnitOfWork,
)
from pymager.service import ImageService
from tests.conftest import sqlite_url

T = TypeVar("T")
NOW = datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=UTC)
THREADS = 16


def make_original(image_id: str = "cat", created: datetime = NOW) -> Original:
    return Original(
        image_id=ImageId(image_id),
        format=ImageFormat.PNG,
        width=640,
        height=480,
        bytes=123_456,
        checksum="ab" * 32,
        created=created,
    )


def make_spec(image_id: str = "cat") -> DerivedSpec:
    return DerivedSpec(ImageId(image_id), Size(100, 50), ImageFormat.WEBP)


def add_original(registry: SqlRegistry, original: Original | None = None) -> Original:
    original = original or make_original()
    with registry.unit_of_work(write=True) as uow:
        assert uow.originals.add(original)
        uow.commit()
    return original


def claim(registry: SqlRegistry, spec: DerivedSpec, owner: str) -> bool:
    with registry.unit_of_work(write=True) as uow:
        claimed = uow.derived.claim(spec, owner, NOW)
        uow.commit()
    return claimed


def run_together(count: int, action: Callable[[], T]) -> list[T]:
    """Run ``action`` in ``count`` threads released at the same moment; return their results."""
    barrier = threading.Barrier(count)

    def start_then_act() -> T:
        barrier.wait()
        return action()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(start_then_act) for _ in range(count)]
        return [future.result() for future in futures]


def test_registry_provides_its_interfaces(registry: SqlRegistry) -> None:
    assert verifyObject(IRegistry, registry)
    with registry.unit_of_work() as uow:
        assert verifyObject(IUnitOfWork, uow)
        assert verifyObject(IOriginalRepository, uow.originals)
        assert verifyObject(IDerivedRepository, uow.derived)
        assert isinstance(uow.originals, SqlOriginalRepository)
        assert isinstance(uow.derived, SqlDerivedRepository)


def test_original_add_then_get_round_trips_with_aware_utc(registry: SqlRegistry) -> None:
    created = NOW.astimezone(timezone(timedelta(hours=-5)))
    original = add_original(registry, make_original(created=created))

    with registry.unit_of_work() as uow:
        record = uow.originals.get(ImageId("cat"))

    assert record is not None
    assert record.status is OriginalStatus.READY
    assert record.original == original
    assert record.original.created.utcoffset() == timedelta(0)
    assert record.original.created == NOW


def test_original_get_returns_none_when_missing(registry: SqlRegistry) -> None:
    with registry.unit_of_work() as uow:
        assert uow.originals.get(ImageId("missing")) is None
        assert uow.originals.lock(ImageId("missing")) is None


def test_original_add_of_existing_id_returns_false_and_changes_nothing(registry: SqlRegistry) -> None:
    first = add_original(registry)
    with registry.unit_of_work(write=True) as uow:
        uow.originals.set_status(ImageId("cat"), OriginalStatus.DELETING, NOW)
        assert not uow.originals.add(make_original(created=NOW + timedelta(days=1)))
        uow.commit()

    with registry.unit_of_work() as uow:
        record = uow.originals.get(ImageId("cat"))
    assert record is not None
    assert record.original == first
    assert record.status is OriginalStatus.DELETING


def test_original_set_status_records_the_time_it_is_given(registry: SqlRegistry) -> None:
    add_original(registry)
    later = NOW + timedelta(hours=3)

    with registry.unit_of_work(write=True) as uow:
        uow.originals.set_status(ImageId("cat"), OriginalStatus.DELETING, later)
        uow.commit()

    with registry.engine.connect() as connection:
        updated_at = connection.scalar(select(OriginalRow.updated_at).where(OriginalRow.id == "cat"))
    assert updated_at == later


def test_original_lock_returns_the_record(registry: SqlRegistry) -> None:
    original = add_original(registry)
    with registry.unit_of_work(write=True) as uow:
        record = uow.originals.lock(ImageId("cat"))
    assert record is not None
    assert record.original == original


def test_original_remove_deletes_its_derived_rows(registry: SqlRegistry) -> None:
    add_original(registry)
    add_original(registry, make_original("dog"))
    assert claim(registry, make_spec("cat"), "worker-1")
    assert claim(registry, make_spec("dog"), "worker-1")

    with registry.unit_of_work(write=True) as uow:
        uow.originals.remove(ImageId("cat"))
        uow.commit()

    with registry.unit_of_work() as uow:
        assert uow.originals.get(ImageId("cat")) is None
        assert uow.derived.get(make_spec("cat")) is None
        assert uow.originals.get(ImageId("dog")) is not None
        assert uow.derived.get(make_spec("dog")) is not None


def test_derived_claim_creates_a_pending_row_and_refuses_a_second_claim(registry: SqlRegistry) -> None:
    add_original(registry)
    spec = make_spec()

    assert claim(registry, spec, "worker-1")
    assert not claim(registry, spec, "worker-2")

    with registry.unit_of_work() as uow:
        record = uow.derived.get(spec)
    assert record is not None
    assert record.spec == spec
    assert record.status is DerivedStatus.PENDING
    assert record.owner == "worker-1"
    assert record.claimed_at == NOW
    assert record.claimed_at.utcoffset() == timedelta(0)
    assert (record.bytes, record.checksum) == (None, None)


def test_derived_take_over_is_a_compare_and_set_on_owner(registry: SqlRegistry) -> None:
    add_original(registry)
    spec = make_spec()
    claim(registry, spec, "worker-1")
    later = NOW + timedelta(minutes=5)

    with registry.unit_of_work(write=True) as uow:
        assert not uow.derived.take_over(spec, "worker-9", "worker-2", later)
        assert uow.derived.take_over(spec, "worker-1", "worker-2", later)
        assert not uow.derived.take_over(spec, "worker-1", "worker-3", later)
        uow.commit()

    with registry.unit_of_work() as uow:
        record = uow.derived.get(spec)
    assert record is not None
    assert (record.owner, record.status, record.claimed_at) == ("worker-2", DerivedStatus.PENDING, later)


def test_derived_mark_ready_only_by_its_owner(registry: SqlRegistry) -> None:
    add_original(registry)
    spec = make_spec()
    claim(registry, spec, "worker-1")

    with registry.unit_of_work(write=True) as uow:
        assert not uow.derived.mark_ready(spec, "worker-2", 10, "cd" * 32, NOW)
        assert uow.derived.mark_ready(spec, "worker-1", 2048, "ef" * 32, NOW)
        uow.commit()

    with registry.unit_of_work() as uow:
        record = uow.derived.get(spec)
    assert record is not None
    assert (record.status, record.bytes, record.checksum) == (DerivedStatus.READY, 2048, "ef" * 32)


def test_derived_take_over_of_a_ready_row_forgets_its_size_and_checksum(registry: SqlRegistry) -> None:
    add_original(registry)
    spec = make_spec()
    claim(registry, spec, "worker-1")
    with registry.unit_of_work(write=True) as uow:
        assert uow.derived.mark_ready(spec, "worker-1", 2048, "ef" * 32, NOW)
        uow.commit()

    with registry.unit_of_work(write=True) as uow:  # its file went missing: generated again
        assert uow.derived.take_over(spec, "worker-1", "worker-2", NOW)
        uow.commit()

    with registry.unit_of_work() as uow:
        record = uow.derived.get(spec)
    assert record is not None
    assert (record.status, record.bytes, record.checksum) == (DerivedStatus.PENDING, None, None)


def test_derived_release_deletes_only_a_pending_row_of_its_owner(registry: SqlRegistry) -> None:
    add_original(registry)
    pending, ready = make_spec(), DerivedSpec(ImageId("cat"), Size(10, 10), ImageFormat.JPEG)
    claim(registry, pending, "worker-1")
    claim(registry, ready, "worker-1")

    with registry.unit_of_work(write=True) as uow:
        assert uow.derived.mark_ready(ready, "worker-1", 1, "00" * 32, NOW)
        uow.derived.release(pending, "worker-2")
        uow.derived.release(ready, "worker-1")
        uow.commit()
    with registry.unit_of_work() as uow:
        assert uow.derived.get(pending) is not None
        assert uow.derived.get(ready) is not None

    with registry.unit_of_work(write=True) as uow:
        uow.derived.release(pending, "worker-1")
        uow.commit()
    with registry.unit_of_work() as uow:
        assert uow.derived.get(pending) is None


def test_unit_of_work_without_commit_rolls_back(registry: SqlRegistry) -> None:
    with registry.unit_of_work(write=True) as uow:
        assert uow.originals.add(make_original())

    with registry.unit_of_work() as uow:
        assert uow.originals.get(ImageId("cat")) is None


def test_unit_of_work_rolls_back_when_its_body_raises(registry: SqlRegistry) -> None:
    def add_then_fail() -> None:
        with registry.unit_of_work(write=True) as uow:
            uow.originals.add(make_original())
            raise KeyError("boom")

    with pytest.raises(KeyError):
        add_then_fail()

    with registry.unit_of_work() as uow:
        assert uow.originals.get(ImageId("cat")) is None


def test_derived_claim_by_concurrent_writers_succeeds_exactly_once(registry: SqlRegistry) -> None:
    add_original(registry)
    spec = make_spec()
    owners = iter(range(THREADS))
    lock = threading.Lock()

    def claim_as_next_owner() -> bool:
        with lock:
            owner = f"worker-{next(owners)}"
        return claim(registry, spec, owner)

    assert sorted(run_together(THREADS, claim_as_next_owner)) == [False] * (THREADS - 1) + [True]


def test_original_add_by_concurrent_writers_succeeds_exactly_once(registry: SqlRegistry) -> None:
    def add() -> bool:
        with registry.unit_of_work(write=True) as uow:
            added = uow.originals.add(make_original())
            uow.commit()
        return added

    assert sorted(run_together(THREADS, add)) == [False] * (THREADS - 1) + [True]


def test_ping_passes_on_a_migrated_database(registry: SqlRegistry) -> None:
    registry.ping()


def test_ping_refuses_an_unmigrated_database(empty_database_url: str) -> None:
    registry = SqlRegistry(make_engine(empty_database_url))
    try:
        with pytest.raises(ServiceUnavailable, match="schema is at revision none, expected 0005"):
            registry.ping()
    finally:
        registry.dispose()


@pytest.mark.parametrize(
    "unreachable_url",
    [
        pytest.param("postgresql+psycopg2://postgres@127.0.0.1:1/test", id="postgres-refused"),
        pytest.param("sqlite:///{tmp}/no/such/directory/registry.sqlite3", id="sqlite-no-directory"),
    ],
)
def test_unreachable_database_is_service_unavailable(unreachable_url: str, tmp_path: Path) -> None:
    registry = SqlRegistry(make_engine(unreachable_url.format(tmp=tmp_path)))
    try:
        with pytest.raises(ServiceUnavailable, match="the image registry is unavailable: ") as caught:
            registry.ping()
        assert caught.value.retry_after == 5
        assert "\n" not in caught.value.detail
        for write in (False, True):
            with pytest.raises(ServiceUnavailable), registry.unit_of_work(write=write):
                pytest.fail("the unit of work began on an unreachable database")
    finally:
        registry.dispose()


def test_sqlite_locked_beyond_its_busy_timeout_is_service_unavailable_then_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pymager.adapters.db.uow.SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "locked.sqlite3"
    migrate.upgrade(sqlite_url(path))
    registry = SqlRegistry(make_engine(sqlite_url(path)))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(ServiceUnavailable, match="locked"), registry.unit_of_work(write=True) as uow:
            uow.commit()
        other.execute("ROLLBACK")
        with registry.unit_of_work(write=True) as uow:
            assert uow.originals.get(ImageId("anything")) is None
            uow.commit()
    finally:
        other.close()
        registry.dispose()


# Derived rows through the service: what they record is what was published.


@implementer(IImageProcessor)
class NumberedRenders:
    """Accepts any upload as a 40x30 PNG; render number n is n copies of ``b"render n;"``, so each
    rendering differs in size and content. ``during_render`` runs inside each rendering."""

    def __init__(self, during_render: Callable[[], None]) -> None:
        self.renders = 0
        self._during_render = during_render

    def identify(self, source: BinaryIO, reduced: Mapping[int, BinaryIO] | None = None) -> ImageInfo:
        source.read()
        return ImageInfo(ImageFormat.PNG, 40, 30)  # makes no reduced copy

    def derive(self, source: BinaryIO, rendition: Rendition, out: BinaryIO) -> None:
        self.renders += 1
        self._during_render()
        out.write(f"render {self.renders};".encode() * self.renders)


def test_derived_rows_record_the_size_and_sha256_of_the_published_file(
    registry: SqlRegistry, tmp_path: Path
) -> None:
    blobs = FileBlobStore(tmp_path / "data")
    blobs.prepare()
    spec = DerivedSpec.parse("cat-10x10.png")
    seen_while_rendering: list[DerivedRecord | None] = []

    def look_at_the_row() -> None:
        with registry.unit_of_work() as uow:
            seen_while_rendering.append(uow.derived.get(spec))

    processor = NumberedRenders(look_at_the_row)
    service = ImageService(
        Settings.for_directory(tmp_path / "data"),
        registry,
        blobs,
        processor,
        FileLocks(tmp_path / "data"),
        PrometheusMetrics(),
        lambda: NOW,
    )
    service.save_original("cat", lambda: Upload(io.BytesIO(b"any bytes")))

    def published_and_recorded() -> tuple[tuple[int, str], tuple[int | None, str | None]]:
        stored = service.derived_file(spec.key)
        with stored.file:
            data = stored.file.read()
        with registry.unit_of_work() as uow:
            record = uow.derived.get(spec)
        assert record is not None
        assert record.status is DerivedStatus.READY
        return (len(data), hashlib.sha256(data).hexdigest()), (record.bytes, record.checksum)

    published, recorded = published_and_recorded()
    assert recorded == published
    Path(blobs.derived_path(spec)).unlink()  # the file went missing: the next request makes it again
    republished, recorded_again = published_and_recorded()
    assert republished != published
    assert recorded_again == republished
    assert processor.renders == 2
    # While a generation runs, its row is pending and lists no size or checksum: neither none yet
    # (the first claim) nor the ones of the file that went missing (the take-over).
    assert len(seen_while_rendering) == 2
    for row in seen_while_rendering:
        assert row is not None
        assert (row.status, row.bytes, row.checksum) == (DerivedStatus.PENDING, None, None)
