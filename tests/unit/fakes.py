"""In-memory fakes of pymager's ports, for testing the service alone. Each is verified against its
zope interface in test_fakes.py, like the real adapters are in the integration tests."""

from __future__ import annotations

import copy
import hashlib
import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import BinaryIO

from zope.interface import implementer

from pymager.domain import (
    STILL_OPAQUE,
    TRAIT_KINDS,
    DerivedRecord,
    DerivedSpec,
    DerivedStatus,
    Focus,
    ImageFormat,
    ImageId,
    ImageInfo,
    Original,
    OriginalRecord,
    OriginalStatus,
    Placeholder,
    PurgeNotice,
    Rendition,
    Size,
    StoredFile,
    Traits,
)
from pymager.errors import CorruptImage, PurgeFailed, ServiceUnavailable, StorageFailed, UnsupportedImage
from pymager.interfaces import (
    IBlobInventory,
    IBlobStore,
    IDerivedRepository,
    IGenerationLocks,
    IHeldLock,
    IImageProcessor,
    IMetrics,
    IOriginalRepository,
    IPurgeOutbox,
    IPurgeSender,
    IRegistry,
    IRetiredFiles,
    IStagedFile,
    IUnitOfWork,
    Leftover,
)

_SpecKey = tuple[str, int, int, str, str]


def _key(spec: DerivedSpec) -> _SpecKey:
    return (spec.image_id, spec.size.width, spec.size.height, spec.format.value, spec.mode.value)


@dataclass
class _Tables:
    originals: dict[str, OriginalRecord] = field(default_factory=dict)
    derived: dict[_SpecKey, DerivedRecord] = field(default_factory=dict)
    # number → (notice, due at)
    notices: dict[int, tuple[PurgeNotice, datetime]] = field(default_factory=dict)
    numbers: int = 0  # the last notice number given


@implementer(IOriginalRepository)
class FakeOriginalRepository:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get(self, image_id: ImageId) -> OriginalRecord | None:
        return self._tables.originals.get(image_id)

    def lock(self, image_id: ImageId) -> OriginalRecord | None:
        return self.get(image_id)

    def add(self, original: Original) -> bool:
        if original.image_id in self._tables.originals:
            return False
        self._tables.originals[original.image_id] = OriginalRecord(original, OriginalStatus.READY)
        return True

    def set_status(self, image_id: ImageId, status: OriginalStatus, now: datetime) -> None:
        self._tables.originals[image_id] = replace(self._tables.originals[image_id], status=status)

    def set_facts(self, image_id: ImageId, info: ImageInfo) -> None:
        record = self._tables.originals[image_id]
        upright = info.upright or Size(info.width, info.height)
        original = replace(record.original, traits=info.traits, upright=upright, placeholder=info.placeholder)
        self._tables.originals[image_id] = replace(record, original=original)

    def set_reduced(self, image_id: ImageId, sides: tuple[int, ...]) -> None:
        record = self._tables.originals[image_id]
        self._tables.originals[image_id] = replace(record, original=replace(record.original, reduced=sides))

    def list_page(self, after: ImageId | None, limit: int) -> list[OriginalRecord]:
        ready = [
            record
            for image_id, record in sorted(self._tables.originals.items())
            if record.status is OriginalStatus.READY and (after is None or image_id > after)
        ]
        return ready[:limit]

    def remove(self, image_id: ImageId) -> None:
        self._tables.originals.pop(image_id, None)
        for key in [key for key in self._tables.derived if key[0] == image_id]:
            del self._tables.derived[key]

    def renew_derived(self, image_id: ImageId) -> None:
        record = self._tables.originals[image_id]
        renewed = replace(record.original, derived_epoch=record.original.derived_epoch + 1)
        self._tables.originals[image_id] = replace(record, original=renewed)

    def list_all(self) -> list[OriginalRecord]:
        return sorted(self._tables.originals.values(), key=lambda record: record.original.image_id)


@implementer(IPurgeOutbox)
class FakePurgeOutbox:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def add(self, image_id: ImageId, body: str, now: datetime) -> None:
        self._tables.numbers += 1  # never reused, as the real outbox's
        self._tables.notices[self._tables.numbers] = (
            PurgeNotice(self._tables.numbers, image_id, body, 0),
            now,
        )

    def due(self, now: datetime, limit: int) -> list[PurgeNotice]:
        waiting = sorted(self._tables.notices.values(), key=lambda entry: (entry[1], entry[0].number))
        return [notice for notice, due in waiting if due <= now][:limit]

    def lease(self, notice: PurgeNotice, until: datetime) -> bool:
        current = self._tables.notices.get(notice.number)
        if current is None or current[0].attempts != notice.attempts:
            return False
        self._tables.notices[notice.number] = (replace(notice, attempts=notice.attempts + 1), until)
        return True

    def postpone(self, notice: PurgeNotice, until: datetime, error: str) -> None:
        current = self._tables.notices.get(notice.number)
        if current is not None and current[0].attempts == notice.attempts:
            self._tables.notices[notice.number] = (current[0], until)

    def remove(self, number: int) -> None:
        self._tables.notices.pop(number, None)

    def pending(self) -> int:
        return len(self._tables.notices)


@implementer(IDerivedRepository)
class FakeDerivedRepository:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get(self, spec: DerivedSpec) -> DerivedRecord | None:
        return self._tables.derived.get(_key(spec))

    def claim(self, spec: DerivedSpec, owner: str, now: datetime) -> bool:
        if _key(spec) in self._tables.derived:
            return False
        self._tables.derived[_key(spec)] = DerivedRecord(spec, DerivedStatus.PENDING, owner, now, None, None)
        return True

    def take_over(self, spec: DerivedSpec, expected_owner: str, owner: str, now: datetime) -> bool:
        record = self.get(spec)
        if record is None or record.owner != expected_owner:
            return False
        self._tables.derived[_key(spec)] = replace(
            record, status=DerivedStatus.PENDING, owner=owner, claimed_at=now, bytes=None, checksum=None
        )
        return True

    def mark_ready(
        self,
        spec: DerivedSpec,
        owner: str,
        size_bytes: int,
        checksum: str,
        now: datetime,
        produced: Size | None = None,
    ) -> bool:
        record = self.get(spec)
        if record is None or record.owner != owner:
            return False
        self._tables.derived[_key(spec)] = replace(
            record,
            status=DerivedStatus.READY,
            bytes=size_bytes,
            checksum=checksum,
            produced=produced,
            created=now,
        )
        return True

    def list_ready(self, image_id: ImageId) -> list[DerivedRecord]:
        return [
            record
            for record in self.list_all()
            if record.spec.image_id == image_id and record.status is DerivedStatus.READY
        ]

    def release(self, spec: DerivedSpec, owner: str) -> None:
        record = self.get(spec)
        if record is not None and record.owner == owner and record.status is DerivedStatus.PENDING:
            del self._tables.derived[_key(spec)]

    def remove(self, spec: DerivedSpec) -> None:
        self._tables.derived.pop(_key(spec), None)

    def list_all(self) -> list[DerivedRecord]:
        return [self._tables.derived[key] for key in sorted(self._tables.derived)]


@implementer(IUnitOfWork)
class FakeUnitOfWork:
    """Works on a copy of the tables; ``commit`` publishes it. Writers are serialised, like SQLite's
    ``BEGIN IMMEDIATE``."""

    def __init__(self, registry: FakeRegistry, write: bool) -> None:
        self._registry = registry
        self._write = write
        self._tables = _Tables()
        self.originals = FakeOriginalRepository(self._tables)
        self.derived = FakeDerivedRepository(self._tables)
        self.outbox = FakePurgeOutbox(self._tables)

    def __enter__(self) -> FakeUnitOfWork:
        if self._registry.down:
            raise ServiceUnavailable("the image registry is unavailable: fake outage")
        if self._write:
            self._registry.writer_lock.acquire()
        with self._registry.state_lock:
            snapshot = copy.deepcopy(self._registry.tables)
        self._tables.originals.update(snapshot.originals)
        self._tables.derived.update(snapshot.derived)
        self._tables.notices.update(snapshot.notices)
        self._tables.numbers = snapshot.numbers
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._write:
            self._registry.writer_lock.release()

    def commit(self) -> None:
        with self._registry.state_lock:
            self._registry.tables = copy.deepcopy(self._tables)
        self._registry.commits += 1


@implementer(IRegistry)
class FakeRegistry:
    def __init__(self) -> None:
        self.tables = _Tables()
        self.state_lock = threading.Lock()
        self.writer_lock = threading.RLock()
        self.down = False
        self.commits = 0

    def unit_of_work(self, write: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, write)

    def ping(self) -> None:
        if self.down:
            raise ServiceUnavailable("the image registry is unavailable: fake outage")


def _original_name(image_id: ImageId) -> str:
    return f"originals/{image_id}"


def _derived_name(spec: DerivedSpec) -> str:
    return f"derived/{spec.image_id}/{spec.name}"


def _reduced_name(image_id: ImageId, side: int) -> str:
    return f"reduced/{image_id}/{side}"


@implementer(IStagedFile)
class FakeStagedFile:
    def __init__(self, store: FakeBlobStore, final_name: str) -> None:
        self._store = store
        self._final_name = final_name
        self.file: BinaryIO = io.BytesIO()
        self.name = f"{final_name}.tmp-{id(self)}"
        self._done = False
        store.temporary[self.name] = self

    def open_for_reading(self) -> BinaryIO:
        return io.BytesIO(self.file.getvalue())  # type: ignore[attr-defined]

    def digest(self) -> tuple[int, str]:
        self._store.digesting.append(self._final_name)
        if self._store.digest_gate is not None:
            assert self._store.digest_gate.wait(10), "test gate never opened"
        data = self.file.getvalue()  # type: ignore[attr-defined]
        return len(data), hashlib.sha256(data).hexdigest()

    def publish(self) -> None:
        if self._done:
            raise RuntimeError(f"{self.name} was already published or discarded")
        self._store.files[self._final_name] = self.file.getvalue()  # type: ignore[attr-defined]
        self._finish()

    def discard(self) -> None:
        if not self._done:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        self._store.temporary.pop(self.name, None)


@implementer(IRetiredFiles)
class FakeRetiredFiles:
    def __init__(self, store: FakeBlobStore, name: str) -> None:
        self._store = store
        self.name = name

    def remove(self) -> None:
        self._store.retired.pop(self.name, None)


@implementer(IBlobStore)
class FakeBlobStore:
    """Pictures in memory. ``files`` names them as the data directory lays them out
    (``originals/<id>``, ``derived/<id>/<W>x<H>.<ext>``), so tests read like the disk."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.temporary: dict[str, FakeStagedFile] = {}
        self.retired: dict[str, dict[str, bytes]] = {}  # retired but not yet removed, by name
        self.writable = True
        self.capacity = 1 << 40  # free_bytes is what stored and staged files leave of it
        self.mtime = datetime(2026, 1, 1, tzinfo=UTC)  # every file's modification time, as listed
        # ``digest_gate``, when set, holds every staged file's ``digest`` (the step after rendering)
        # until it is set; ``digesting`` lists the final names whose digest was asked, in order.
        self.digest_gate: threading.Event | None = None
        self.digesting: list[str] = []
        self.traits: dict[ImageId, Traits] = {}  # published traits, by id (they go with derived/<id>/)

    def open_original(self, image_id: ImageId, image_format: ImageFormat) -> StoredFile | None:
        return self._open(_original_name(image_id), image_format.mime_type)

    def open_derived(self, spec: DerivedSpec) -> StoredFile | None:
        return self._open(_derived_name(spec), spec.format.mime_type)

    def has_original(self, image_id: ImageId) -> bool:
        return _original_name(image_id) in self.files

    def has_derived(self, spec: DerivedSpec) -> bool:
        return _derived_name(spec) in self.files

    def stage_original(self, image_id: ImageId) -> FakeStagedFile:
        return FakeStagedFile(self, _original_name(image_id))

    def stage_derived(self, spec: DerivedSpec) -> FakeStagedFile:
        return FakeStagedFile(self, _derived_name(spec))

    def stage_reduced(self, image_id: ImageId, side: int) -> FakeStagedFile:
        return FakeStagedFile(self, _reduced_name(image_id, side))

    def open_reduced(self, image_id: ImageId, side: int) -> BinaryIO | None:
        data = self.files.get(_reduced_name(image_id, side))
        return None if data is None else io.BytesIO(data)

    def has_reduced(self, image_id: ImageId, side: int) -> bool:
        return _reduced_name(image_id, side) in self.files

    def published_traits(self, image_id: ImageId) -> Traits | None:
        return self.traits.get(image_id)

    def publish_traits(self, image_id: ImageId, traits: Traits) -> None:
        if not self.writable:
            raise StorageFailed("the data directory is not writable")
        self.traits[image_id] = Traits.of_kind(traits.kind)

    def retire_derived(self, image_id: ImageId) -> FakeRetiredFiles | None:
        self.traits.pop(image_id, None)
        prefix = f"derived/{image_id}/"
        moved = {name: data for name, data in self.files.items() if name.startswith(prefix)}
        if not moved:
            return None
        for name in moved:
            del self.files[name]
        retired = FakeRetiredFiles(self, f"derived/.trash-{len(self.retired)}-{image_id}")
        self.retired[retired.name] = moved
        return retired

    def delete_image(self, image_id: ImageId) -> None:
        retired = self.retire_derived(image_id)
        if retired is not None:
            retired.remove()
        self.files.pop(_original_name(image_id), None)
        for name in [name for name in self.files if name.startswith(f"reduced/{image_id}/")]:
            del self.files[name]

    def check(self) -> None:
        if not self.writable:
            raise ServiceUnavailable("the data directory is not writable")

    def free_bytes(self) -> int:
        staged = sum(len(temporary.file.getvalue()) for temporary in self.temporary.values())  # type: ignore[attr-defined]
        return self.capacity - staged - sum(map(len, self.files.values()))

    def _open(self, name: str, content_type: str) -> StoredFile | None:
        data = self.files.get(name)
        if data is None:
            return None
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        return StoredFile(io.BytesIO(data), content_type, len(data), self.mtime, etag)


@implementer(IBlobInventory)
class FakeInventory:
    """What a ``FakeBlobStore`` holds; every item listed with the store's ``mtime``."""

    def __init__(self, store: FakeBlobStore) -> None:
        self._store = store

    def list_originals(self) -> list[tuple[ImageId, datetime]]:
        return [
            (ImageId(name.split("/")[1]), self._store.mtime)
            for name in self._store.files
            if name.startswith("originals/")
        ]

    def list_derived(self) -> list[tuple[DerivedSpec, datetime]]:
        found = []
        for name in self._store.files:
            if name.startswith("derived/"):
                _, image_id, file_name = name.split("/")
                found.append((DerivedSpec.parse(f"{image_id}-{file_name}"), self._store.mtime))
        return found

    def list_reduced(self) -> list[tuple[ImageId, int, datetime]]:
        found = []
        for name in self._store.files:
            if name.startswith("reduced/"):
                _, image_id, side = name.split("/")
                found.append((ImageId(image_id), int(side), self._store.mtime))
        return found

    def remove_reduced(self, image_id: ImageId, side: int, listed: datetime | None = None) -> None:
        if listed is None or listed == self._store.mtime:
            self._store.files.pop(_reduced_name(image_id, side), None)

    def list_leftovers(self) -> list[Leftover]:
        names = [*self._store.temporary, *self._store.retired]
        return [Leftover(name, self._store.mtime, "") for name in names]

    def remove_original(self, image_id: ImageId, listed: datetime) -> None:
        if listed == self._store.mtime:
            self._store.files.pop(_original_name(image_id), None)

    def remove_derived(self, spec: DerivedSpec, listed: datetime | None = None) -> None:
        if listed is None or listed == self._store.mtime:
            self._store.files.pop(_derived_name(spec), None)

    def remove_leftover(self, leftover: Leftover) -> None:
        if leftover.modified == self._store.mtime:
            self._store.temporary.pop(leftover.name, None)
            self._store.retired.pop(leftover.name, None)


FAKE_THUMBHASH = "AAAA"


def fake_image(
    image_format: ImageFormat = ImageFormat.JPEG,
    width: int = 40,
    height: int = 30,
    traits: Traits = STILL_OPAQUE,
) -> bytes:
    """Bytes that FakeProcessor identifies as an image (of ``traits``: an animation's alpha is not kept)."""
    return f"IMG:{image_format.value}:{width}x{height}:{traits.kind}:".encode() + b"pixels"


@implementer(IImageProcessor)
class FakeProcessor:
    """Identifies ``fake_image`` bytes; ``b"CORRUPT"`` is a corrupt image, anything else no image.
    Writes ``REDUCED:<side>:`` + the original's bytes as each reduced copy smaller than it, and
    derives from a copy (``derive_reduced``) as ``FROM-COPY:`` + what ``derive`` writes.
    ``gate``, when set, holds every ``derive`` until it is set (for concurrency tests)."""

    def __init__(self) -> None:
        self.derive_calls: list[Rendition] = []
        self.detected: Focus | None = None  # what identify reports as the detected focal point
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self._lock = threading.Lock()

    def identify(self, source: BinaryIO, reduced: Mapping[int, BinaryIO] | None = None) -> ImageInfo:
        data = source.read()
        if data.startswith(b"CORRUPT"):
            raise CorruptImage("the JPEG data is corrupt or truncated: fake")
        parts = data.split(b":")
        if len(parts) < 4 or parts[0] != b"IMG":
            raise UnsupportedImage("not an image in an accepted format (JPEG, PNG, GIF, WebP, AVIF, HEIC)")
        width, height = (int(n) for n in parts[2].split(b"x"))
        kind = parts[3].decode()
        traits = Traits.of_kind(kind) if kind in TRAIT_KINDS else STILL_OPAQUE
        shown = Placeholder(FAKE_THUMBHASH, "#102030")
        made = tuple(sorted((side for side in reduced or {} if side < max(width, height)), reverse=True))
        for side in made:
            assert reduced is not None
            reduced[side].write(f"REDUCED:{side}:".encode() + data)
        image_format = ImageFormat(parts[1].decode())
        return ImageInfo(image_format, width, height, self.detected, traits, None, shown, made)

    def derive(self, source: BinaryIO, rendition: Rendition, out: BinaryIO) -> Size:
        with self._lock:
            self.derive_calls.append(rendition)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        label = f"{rendition.size}{rendition.mode.suffix}:{rendition.format.value}:{rendition.focus}"
        out.write(f"DERIVED:{label}:".encode() + source.read())
        return rendition.size

    def derive_reduced(self, source: BinaryIO, rendition: Rendition, upright: Size, out: BinaryIO) -> Size:
        out.write(b"FROM-COPY:")
        return self.derive(source, rendition, out)


@implementer(IMetrics)
class FakeMetrics:
    def __init__(self) -> None:
        self.served: list[str] = []
        self.generated: list[float] = []
        self.coalesced = 0
        self.uploads: list[int] = []
        self.purge_notices: list[bool] = []

    def derived_served(self, source: str) -> None:
        self.served.append(source)

    def derived_generated(self, seconds: float) -> None:
        self.generated.append(seconds)

    def derived_coalesced(self) -> None:
        self.coalesced += 1

    def upload_finished(self, status: int) -> None:
        self.uploads.append(status)

    def purge_notice_sent(self, delivered: bool) -> None:
        self.purge_notices.append(delivered)

    def exposition(self) -> tuple[str, bytes]:
        return "text/plain", f"served {len(self.served)}".encode()


@implementer(IHeldLock)
class FakeHeldLock:
    def __init__(self, locks: FakeLocks, key: str) -> None:
        self._locks = locks
        self._key = key
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._locks.release(self._key)


@implementer(IGenerationLocks)
class FakeLocks:
    """In-memory locks; ``try_acquire`` from a test stands for another process holding the lock."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._changed = threading.Condition()

    def try_acquire(self, spec: DerivedSpec) -> FakeHeldLock | None:
        with self._changed:
            if spec.key in self._held:
                return None
            self._held.add(spec.key)
            return FakeHeldLock(self, spec.key)

    def wait(self, spec: DerivedSpec, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: spec.key not in self._held, timeout)

    def release(self, key: str) -> None:
        with self._changed:
            self._held.discard(key)
            self._changed.notify_all()


@implementer(IPurgeSender)
class FakePurgeSender:
    """Records what it is sent; fails while ``failing``."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.failing = False

    def send(self, number: int, body: bytes) -> None:
        if self.failing:
            raise PurgeFailed("the purge webhook answered 503")
        self.sent.append((number, body))
