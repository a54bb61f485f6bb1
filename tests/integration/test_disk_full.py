"""The service on a real small filesystem (a tmpfs the test mounts), with the real filesystem adapter,
registry (SQLite and PostgreSQL) and Pillow: a full disk is ``StorageFull``, a read-only one and injected
I/O errors (os functions that fail for paths of the data directory) are ``StorageFailed``, at each step
of upload, generation and delete. After each, nothing is left (no row, no file, no temporary file), the
registry is true, and the same call succeeds once the disk is well again."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pymager.bootstrap import Components, build
from pymager.config import Settings
from pymager.domain import DerivedSpec, ImageId, OriginalStatus, Upload
from pymager.errors import StorageFailed, StorageFull
from pymager.service import ImageService
from tests import disk

MIB = 1024 * 1024
SIZE = 8 * MIB
ORIGINAL = disk.noise_png(400, 400)  # about 480 KB, and so is its 400x400 derived image
BIG = "pic-400x400.png"
THUMB = "pic-40x40.png"


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    with disk.small_filesystem(tmp_path / "small", SIZE) as mounted:
        yield mounted


@dataclass
class Store:
    """The service on the small filesystem, and what it holds behind it."""

    mountpoint: Path
    components: Components

    @property
    def service(self) -> ImageService:
        return self.components.service

    def upload(self, image_id: str = "pic", data: bytes = ORIGINAL, declared: int | None = None) -> None:
        self.service.save_original(image_id, lambda: Upload(io.BytesIO(data)), declared)

    def derive(self, segment: str) -> bytes:
        stored = self.service.derived_file(segment)
        with stored.file:
            return stored.file.read()

    def status(self, image_id: str = "pic") -> OriginalStatus | None:
        with self.components.registry.unit_of_work() as uow:
            record = uow.originals.get(ImageId(image_id))
        return None if record is None else record.status

    def derived_rows(self, segment: str) -> int:
        with self.components.registry.unit_of_work() as uow:
            return 0 if uow.derived.get(DerivedSpec.parse(segment)) is None else 1

    def temporary_files(self) -> list[Path]:
        data = self.mountpoint
        return [p for p in data.rglob(".*") if p.name.startswith((".tmp-", ".trash-"))]

    def has_original(self, image_id: str = "pic") -> bool:
        return (self.mountpoint / "originals" / image_id).exists()

    def has_derived(self, segment: str) -> bool:
        spec = DerivedSpec.parse(segment)
        return (self.mountpoint / "derived" / spec.image_id / spec.name).exists()

    def leaves_nothing(self, image_id: str = "pic") -> bool:
        derived = self.mountpoint / "derived" / image_id
        files = [*derived.iterdir()] if derived.is_dir() else []
        return self.status(image_id) is None and not self.has_original(image_id) and not files

    def uses_file_locks(self) -> bool:
        return self.components.registry.engine.dialect.name == "sqlite"


@pytest.fixture
def make_store(mountpoint: Path, database_url: str) -> Iterator[Callable[..., Store]]:
    """``make_store(min_free_bytes=…)``: the service on the small filesystem with those settings (no
    reserve unless given: the default 100 MiB is more than the whole filesystem)."""
    built: list[Components] = []

    def make(**overrides: Any) -> Store:
        values: dict[str, Any] = {"database_url": database_url, "min_free_bytes": 0, **overrides}
        settings = Settings.for_directory(mountpoint, **values)
        built.append(build(settings))
        return Store(mountpoint, built[-1])

    yield make
    for components in built:
        components.registry.dispose()


# -- a full disk -------------------------------------------------------------------------------------


def test_upload_to_a_full_disk_is_storage_full_and_leaves_nothing(make_store: Callable[..., Store]) -> None:
    store = make_store(min_free_bytes=0)
    disk.fill(store.mountpoint, leave=64 * 1024)

    with pytest.raises(StorageFull, match="No space left on device"):
        store.upload()

    assert store.leaves_nothing()
    assert not store.temporary_files()
    disk.empty(store.mountpoint)
    store.upload()
    assert store.status() is OriginalStatus.READY


def test_upload_declared_past_the_reserve_is_refused_before_its_body_is_read(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(min_free_bytes=MIB)
    disk.fill(store.mountpoint, leave=MIB + 256 * 1024)

    def never_read() -> Upload:
        raise AssertionError("the upload was read")

    with pytest.raises(StorageFull, match="no room for this upload"):
        store.service.save_original("pic", never_read, len(ORIGINAL))
    assert store.leaves_nothing()
    assert not store.temporary_files()


def test_upload_crossing_the_reserve_as_it_is_stored_is_storage_full_and_leaves_nothing(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(min_free_bytes=MIB)
    disk.fill(store.mountpoint, leave=MIB + 256 * 1024)

    with pytest.raises(StorageFull, match="no room for this upload"):
        store.upload()  # no declared length: a chunked upload

    assert store.leaves_nothing()
    assert not store.temporary_files()


def test_generation_on_a_full_disk_leaves_no_temporary_file_and_no_claim_then_succeeds(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(min_free_bytes=0)
    store.upload()
    disk.fill(store.mountpoint, leave=128 * 1024)

    for _ in range(3):  # the issue: each failed generation used to leave its temporary file
        with pytest.raises(StorageFull, match="No space left on device"):
            store.derive(BIG)
        assert not store.temporary_files()
        assert store.derived_rows(BIG) == 0
        assert not store.has_derived(BIG)

    disk.empty(store.mountpoint)
    assert store.derive(BIG).startswith(b"\x89PNG")
    assert store.derived_rows(BIG) == 1


def test_generation_below_its_reserve_is_refused_before_it_claims(make_store: Callable[..., Store]) -> None:
    store = make_store(min_free_bytes=2 * MIB)  # generation keeps 512 KiB
    store.upload()
    store.derive(THUMB)
    disk.fill(store.mountpoint, leave=256 * 1024)

    with pytest.raises(StorageFull, match="no room for generating pic-400x400"):
        store.derive(BIG)

    assert store.derived_rows(BIG) == 0
    assert not store.temporary_files()
    assert store.derive(THUMB)  # hits are served
    disk.empty(store.mountpoint)
    assert store.derive(BIG)


def test_delete_on_a_full_disk_succeeds_and_frees_space(make_store: Callable[..., Store]) -> None:
    store = make_store(min_free_bytes=0)
    store.upload()
    store.derive(THUMB)
    disk.fill(store.mountpoint)
    before = disk.free_bytes(store.mountpoint)

    store.service.delete_original("pic")

    assert store.leaves_nothing()
    assert not store.temporary_files()
    assert disk.free_bytes(store.mountpoint) > before + len(ORIGINAL) // 2


def test_health_is_full_below_the_reserve_and_ok_again_once_space_is_freed(
    make_store: Callable[..., Store],
) -> None:
    store = make_store(min_free_bytes=MIB)
    assert store.service.health() == {"registry": "ok", "storage": "ok"}
    disk.fill(store.mountpoint, leave=MIB // 2)
    assert store.service.health() == {"registry": "ok", "storage": "full"}
    disk.empty(store.mountpoint)
    assert store.service.health() == {"registry": "ok", "storage": "ok"}


# -- a read-only disk (EROFS, as ext4 remounts itself after I/O errors) ------------------------------


def test_a_read_only_disk_fails_every_write_and_still_serves_hits(make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.upload()
    thumb = store.derive(THUMB)

    with disk.read_only(store.mountpoint):
        with pytest.raises(StorageFailed, match="Read-only file system"):
            store.upload("other")
        with pytest.raises(StorageFailed, match="Read-only file system"):
            store.derive(BIG)
        with pytest.raises(StorageFailed, match="Read-only file system"):
            store.service.delete_original("pic")
        with pytest.raises(StorageFailed, match="not writable"):
            store.service.health()
        assert store.derive(THUMB) == thumb
        assert store.status() is OriginalStatus.READY  # the delete changed nothing

    assert store.leaves_nothing("other")
    assert store.derived_rows(BIG) == 0
    assert not store.temporary_files()
    assert store.derive(BIG)
    store.service.delete_original("pic")
    assert store.leaves_nothing()


# -- injected I/O errors -----------------------------------------------------------------------------


def _path_of(target: object, dir_fd: int | None) -> str | None:
    """The absolute path an os function's first argument names (a path, or a file descriptor)."""
    if isinstance(target, int):
        try:
            return os.readlink(f"/proc/self/fd/{target}")
        except OSError:
            return None
    if not isinstance(target, str | bytes | os.PathLike):
        return None
    path = os.fsdecode(target)
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    return os.path.abspath(path)


@dataclass(frozen=True)
class Fault:
    """``os.<function>`` fails with ``code`` for paths (or descriptors of paths) that ``where`` picks."""

    function: str
    code: int
    where: Callable[[str], bool]
    name: str

    def inject(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = getattr(os, self.function)

        def failing(*args: Any, **kwargs: Any) -> Any:
            path = _path_of(args[0], kwargs.get("dir_fd")) if args else None
            if path is not None and self.where(path):
                raise OSError(self.code, os.strerror(self.code), path)
            return real(*args, **kwargs)

        monkeypatch.setattr(os, self.function, failing)


def _temporary(part: str) -> Callable[[str], bool]:
    return lambda path: f"/{part}/" in path and os.path.basename(path).startswith(".tmp-")


def _directory(part: str) -> Callable[[str], bool]:
    return lambda path: path.endswith(f"/{part}")


UPLOAD_FAULTS = [
    Fault("open", errno.EIO, _temporary("originals"), "creating the temporary file"),
    Fault("write", errno.EIO, _temporary("originals"), "writing"),
    Fault("write", errno.EDQUOT, _temporary("originals"), "writing over a quota"),
    Fault("fsync", errno.EIO, _temporary("originals"), "fsyncing the file"),
    Fault("replace", errno.EIO, _temporary("originals"), "renaming into place"),
    Fault("fsync", errno.EIO, _directory("originals"), "fsyncing the directory"),
]

GENERATION_FAULTS = [
    Fault("open", errno.EIO, lambda path: "/locks/" in path, "opening the lock file"),
    Fault("open", errno.EIO, lambda path: "/originals/pic" in path, "opening the original"),
    Fault("readv", errno.EIO, lambda path: "/originals/pic" in path, "reading the original"),
    Fault("open", errno.EIO, _temporary("derived"), "creating the temporary file"),
    Fault("write", errno.EIO, _temporary("derived"), "writing"),
    Fault("write", errno.ENOSPC, _temporary("derived"), "writing on a full disk"),
    Fault("fsync", errno.EIO, _temporary("derived"), "fsyncing the file"),
    Fault("replace", errno.EIO, _temporary("derived"), "renaming into place"),
    Fault("fsync", errno.EIO, _directory("derived/pic"), "fsyncing the directory"),
]

DELETE_FAULTS = [
    Fault("replace", errno.EIO, lambda path: path.endswith("/derived/pic"), "retiring derived images"),
    Fault("unlink", errno.EIO, lambda path: "/originals/pic" in path, "removing the original"),
    Fault("unlink", errno.ENOSPC, lambda path: "/originals/pic" in path, "no space to remove (btrfs)"),
]

FAILURE = {errno.ENOSPC: StorageFull, errno.EDQUOT: StorageFull, errno.EIO: StorageFailed}


def _ids(faults: list[Fault]) -> list[str]:
    return [f"{fault.name}-{errno.errorcode[fault.code]}" for fault in faults]


@pytest.mark.parametrize("fault", UPLOAD_FAULTS, ids=_ids(UPLOAD_FAULTS))
def test_an_upload_whose_storage_fails_leaves_nothing_and_succeeds_once_well(
    make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    store = make_store()
    with monkeypatch.context() as patched:
        fault.inject(patched)
        with pytest.raises(FAILURE[fault.code], match=os.strerror(fault.code)):
            store.upload()
    assert store.leaves_nothing()
    assert not store.temporary_files()
    store.upload()
    assert store.status() is OriginalStatus.READY


@pytest.mark.parametrize("fault", GENERATION_FAULTS, ids=_ids(GENERATION_FAULTS))
def test_a_generation_whose_storage_fails_releases_its_claim_and_succeeds_once_well(
    make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    store = make_store()
    if fault.where(str(store.mountpoint / "locks" / "x.lock")) and not store.uses_file_locks():
        pytest.skip("PostgreSQL registries lock with advisory locks, not lock files")
    store.upload()
    with monkeypatch.context() as patched:
        fault.inject(patched)
        with pytest.raises(FAILURE[fault.code], match=os.strerror(fault.code)):
            store.derive(THUMB)  # never a corrupt image or a 500, whatever step fails
    assert store.derived_rows(THUMB) == 0
    assert not store.has_derived(THUMB)
    assert not store.temporary_files()
    assert store.derive(THUMB)
    assert store.derived_rows(THUMB) == 1


@pytest.mark.parametrize("fault", DELETE_FAULTS, ids=_ids(DELETE_FAULTS))
def test_a_delete_whose_storage_fails_keeps_the_registry_true_and_a_retry_finishes_it(
    make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    store = make_store()
    store.upload()
    store.derive(THUMB)
    with monkeypatch.context() as patched:
        fault.inject(patched)
        with pytest.raises(FAILURE[fault.code], match=os.strerror(fault.code)):
            store.service.delete_original("pic")
    if fault.function == "replace":  # nothing was changed yet: still served
        assert store.status() is OriginalStatus.READY
        assert store.derive(THUMB)
    else:  # derived images gone, the original hidden until a retry (or the repair) finishes
        assert store.status() is OriginalStatus.DELETING
        assert not store.has_derived(THUMB)
    store.service.delete_original("pic")
    assert store.leaves_nothing()
    assert not store.temporary_files()


def test_a_delete_that_cannot_remove_its_retired_files_keeps_its_deleting_row(
    make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.upload()
    store.derive(THUMB)
    fault = Fault("unlink", errno.EIO, lambda path: "/derived/.trash-" in path, "removing retired files")
    with monkeypatch.context() as patched:
        fault.inject(patched)
        with pytest.raises(StorageFailed, match="Input/output error"):
            store.service.delete_original("pic")
    assert store.status() is OriginalStatus.DELETING
    assert not store.has_derived(THUMB)
    store.service.delete_original("pic")
    assert store.leaves_nothing()
    # What the failing disk kept is out of service: a retired directory of this live process, which
    # the repair removes once the process is gone (README, "Crash repair").
    assert [path.name[:7] for path in store.temporary_files()] == [".trash-"]
