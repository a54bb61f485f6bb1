"""Originals and derived images as files under the data directory, published atomically: the blob store
the service uses (``FileBlobStore``) and the inventory the consistency check uses (``FileInventory``).

Layout (a front web server computes a derived path from its URL alone)::

    <data>/originals/<id>
    <data>/derived/<id>/<W>x<H>[-<mode>].<ext>   (fill names no mode; fit and pad do)
    <data>/derived/<id>/.traits-<kind>           (animated, alpha or opaque: what a front server
                                                  choosing an ``auto`` format reads; an empty file)
    <data>/reduced/<id>/<side>                   reduced copies of the original (JPEG, PNG or TIFF, by
                                                  long side; never served)
    .tmp-<host>~<pid>~*     temporary files, always beside their final path, never served
    .trash-<host>~<pid>~*   derived directories being removed by a delete

Temporary names carry their creator, so the consistency check can sweep those of dead processes at once.

A staged file is written to a temporary file in the target's directory, fsynced, renamed over the
final path with ``os.replace`` and the directory fsynced, so a reader sees the old file, the new file or
none, never part of one.

Every ``OSError`` of the data directory leaves this module as ``StorageFull`` (no space, over a quota) or
``StorageFailed`` (an I/O error, a read-only filesystem …): the service and the web layer never see an
errno. A failed write, publish or removal leaves no temporary file and no half-published file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from zope.interface import implementer

from pymager.config import EtagStyle
from pymager.domain import TRAIT_KINDS, DerivedSpec, ImageFormat, ImageId, StoredFile, Traits, stored_derived
from pymager.errors import PymagerError, ServiceUnavailable, StorageFailed, storage_failure
from pymager.interfaces import IBlobInventory, IBlobStore, IRetiredFiles, IStagedFile, Leftover
from pymager.owners import file_tag, owner_of_tag

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
TRAITS_PREFIX = ".traits-"
_TRAIT_MARKS = {f"{TRAITS_PREFIX}{kind}": kind for kind in TRAIT_KINDS}
_FILE_MODE = 0o644


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _storage(doing: str) -> Iterator[None]:
    """Raise an ``OSError`` of the data directory as the failure it is (``storage_failure``)."""
    try:
        yield
    except OSError as exc:
        raise storage_failure(exc, doing) from exc


class _StoreFile(io.RawIOBase):
    """A file descriptor of the data directory whose failures are storage failures, so that whatever
    reads or writes it (the service's copy, Pillow's encoders and decoders) never handles an ``OSError``
    (Pillow would call a read error corrupt data). It has no ``fileno``: given one, Pillow's encoders
    write to the descriptor themselves and report a failure without its errno."""

    def __init__(self, fd: int, doing: str, writable: bool = False) -> None:
        super().__init__()
        self._fd = fd
        self._doing = doing
        self._writable = writable

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self._writable

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        with _storage(self._doing):
            return os.readv(self._fd, [buffer])

    def write(self, data: ReadableBuffer) -> int:
        with _storage(self._doing):
            return os.write(self._fd, data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        with _storage(self._doing):
            return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return self.seek(0, os.SEEK_CUR)

    def close(self) -> None:
        if self.closed:
            return
        try:
            with _storage(self._doing):
                os.close(self._fd)
        finally:
            super().close()


@implementer(IStagedFile)
class StagedFile:
    """A temporary file beside ``final_path``; ``publish`` moves it into place atomically. ``doing``
    (``"storing the original"``) says in a failure's detail what failed."""

    def __init__(self, final_path: Path, doing: str = "writing to the data directory") -> None:
        self._doing = doing
        with _storage(doing):
            final_path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_path = tempfile.mkstemp(prefix=TEMP_PREFIX + file_tag(), dir=final_path.parent)
            try:
                os.fchmod(fd, _FILE_MODE)
            except OSError:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(temp_path)
                raise
        self._fd = fd
        self.file: BinaryIO = io.BufferedRandom(_StoreFile(fd, doing, writable=True))
        self.path = temp_path
        self._final_path = final_path
        self._done = False

    def open_for_reading(self) -> BinaryIO:
        self.file.flush()
        with _storage(self._doing):
            return open(self.path, "rb")

    def digest(self) -> tuple[int, str]:
        # Read through the descriptor, not the path: a concurrent DELETE may have renamed away and
        # removed the derived directory this file was staged in, and the caller's check under the row
        # lock is what must tell (deleted or replaced), not an ENOENT passed off as a storage failure.
        self.file.flush()
        sha256 = hashlib.sha256()
        size = 0
        with _storage(self._doing):
            while chunk := os.pread(self._fd, 1 << 20, size):
                sha256.update(chunk)
                size += len(chunk)
        return size, sha256.hexdigest()

    def publish(self) -> None:
        if self._done:
            raise RuntimeError(f"{self.path} was already published or discarded")
        with _storage(self._doing):
            self.file.flush()
            os.fsync(self._fd)
            self.file.close()
            os.replace(self.path, self._final_path)
        self._done = True
        try:
            with _storage(self._doing):
                _fsync_directory(self._final_path.parent)
        except StorageFailed:
            # In place but perhaps not durable, and the caller's transaction will not record it: taken
            # back, so that no file is published without its row.
            with contextlib.suppress(OSError):
                os.unlink(self._final_path)
            raise

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(PymagerError):  # what is still buffered is not wanted anyway
            self.file.close()
        with _storage(self._doing), contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # gone already if a concurrent delete removed its directory


@implementer(IRetiredFiles)
class RetiredDirectory:
    """An image's derived directory, renamed out of sight (``.trash-…``) until ``remove``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def remove(self) -> None:
        failures: list[OSError] = []

        def failed(error: BaseException) -> None:
            if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
                failures.append(error)  # a file removed meanwhile is as good as removed here

        if sys.version_info >= (3, 12):
            shutil.rmtree(self.path, onexc=lambda _function, _path, error: failed(error))
        else:
            shutil.rmtree(self.path, onerror=lambda _function, _path, info: failed(info[1]))
        if failures:
            raise storage_failure(failures[0], "deleting the image")


@implementer(IBlobStore)
class FileBlobStore:
    """Files under one data directory (which may be shared by several processes and hosts)."""

    def __init__(self, root: Path, etag_style: EtagStyle = "apache") -> None:
        self.root = root
        self._etag = _ETAG_FORMULAS[etag_style]
        self.originals = root / "originals"
        self.derived = root / "derived"
        self.reduced = root / "reduced"
        self._originals_root = str(self.originals)
        self._derived_root = str(self.derived)
        self._reduced_root = str(self.reduced)

    def prepare(self) -> None:
        """Create the directory layout; raise ``ServiceUnavailable`` if it cannot be written."""
        for directory in (self.originals, self.derived, self.reduced):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ServiceUnavailable(f"cannot create {directory}: {exc.strerror}") from None
        self.check()

    def original_path(self, image_id: ImageId) -> str:
        """Where the original ``image_id`` is published (``originals/<id>``)."""
        return os.path.join(self._originals_root, ImageId(image_id))

    def derived_path(self, spec: DerivedSpec) -> str:
        """The final path of a derived image, computable from its URL alone
        (``derived/<id>/<W>x<H>[-<mode>].<ext>``, the canonical extension)."""
        return f"{self._derived_root}/{ImageId(spec.image_id)}/{spec.name}"

    def reduced_path(self, image_id: ImageId, side: int) -> str:
        """Where the reduced copy of long side ``side`` of ``image_id`` is published."""
        return f"{self._reduced_root}/{ImageId(image_id)}/{int(side)}"

    def open_original(self, image_id: ImageId, image_format: ImageFormat) -> StoredFile | None:
        return _open(self.original_path(image_id), image_format.mime_type, self._etag, "reading the original")

    def open_derived(self, spec: DerivedSpec) -> StoredFile | None:
        return _open(self.derived_path(spec), spec.format.mime_type, self._etag)

    def has_original(self, image_id: ImageId) -> bool:
        return os.path.isfile(self.original_path(image_id))

    def has_derived(self, spec: DerivedSpec) -> bool:
        return os.path.isfile(self.derived_path(spec))

    def stage_original(self, image_id: ImageId) -> StagedFile:
        return StagedFile(Path(self.original_path(image_id)), "storing the original")

    def stage_derived(self, spec: DerivedSpec) -> StagedFile:
        return StagedFile(Path(self.derived_path(spec)), "storing the derived image")

    def stage_reduced(self, image_id: ImageId, side: int) -> StagedFile:
        return StagedFile(Path(self.reduced_path(image_id, side)), "storing a reduced copy")

    def open_reduced(self, image_id: ImageId, side: int) -> BinaryIO | None:
        doing = "reading a reduced copy"
        try:
            fd = os.open(self.reduced_path(image_id, side), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise storage_failure(exc, doing) from exc
        # Decoded by Pillow: through a _StoreFile, so a read error is a storage failure, not corrupt data.
        return io.BufferedReader(_StoreFile(fd, doing))

    def has_reduced(self, image_id: ImageId, side: int) -> bool:
        return os.path.isfile(self.reduced_path(image_id, side))

    def published_traits(self, image_id: ImageId) -> Traits | None:
        directory = f"{self._derived_root}/{ImageId(image_id)}/"
        for mark, kind in _TRAIT_MARKS.items():
            if os.path.isfile(directory + mark):
                return Traits.of_kind(kind)
        return None

    def publish_traits(self, image_id: ImageId, traits: Traits) -> None:
        directory = self.derived_directory(image_id)
        mark = directory / f"{TRAITS_PREFIX}{traits.kind}"
        with _storage("publishing the image's traits"):
            directory.mkdir(exist_ok=True)
            # An empty file: renamed into place so a front server never sees two kinds at once for long.
            temp = directory / f"{TEMP_PREFIX}{file_tag()}{uuid.uuid4().hex}"
            temp.touch(_FILE_MODE)
            try:
                os.replace(temp, mark)
            except OSError:
                with contextlib.suppress(OSError):
                    temp.unlink()
                raise
            for other in _TRAIT_MARKS:
                if other != mark.name:
                    with contextlib.suppress(FileNotFoundError):
                        (directory / other).unlink()

    def retire_derived(self, image_id: ImageId) -> RetiredDirectory | None:
        # One rename: every derived file of the id disappears at once for readers and a front server,
        # however long removing them takes.
        trash = self.derived / f"{_TRASH_PREFIX}{file_tag()}{uuid.uuid4().hex}"
        try:
            os.replace(self.derived_directory(image_id), trash)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_failure(exc, "deleting the image") from exc
        return RetiredDirectory(str(trash))

    def delete_image(self, image_id: ImageId) -> None:
        retired = self.retire_derived(image_id)
        if retired is not None:
            retired.remove()
        with _storage("deleting the image"), contextlib.suppress(FileNotFoundError):
            os.unlink(self.original_path(image_id))
        self._delete_reduced(image_id)

    def _delete_reduced(self, image_id: ImageId) -> None:
        """Remove the reduced copies of ``image_id``, then their directory."""
        directory = self.reduced / ImageId(image_id)
        with _storage("deleting the image"):
            for entry in _entries(directory):
                if not entry.name.startswith(TEMP_PREFIX):  # a staged copy is its writer's to discard
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        with contextlib.suppress(OSError):  # not empty: a staged copy of an upload in progress
            directory.rmdir()

    def check(self) -> None:
        # A read-only data directory (ext4 remounts itself so after I/O errors) serves hits but stores
        # nothing: unusable, so that a load balancer moves writes and misses elsewhere.
        for directory in (self.originals, self.derived):
            if not (directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)):
                raise StorageFailed(f"the data directory {directory} is missing or not writable")

    def free_bytes(self) -> int:
        # statvfs costs about 3 µs (ext4, tmpfs): read afresh each time, never cached.
        with _storage("measuring free space"):
            st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def derived_directory(self, image_id: ImageId) -> Path:
        """The directory of every derived file of ``image_id``."""
        return self.derived / ImageId(image_id)


@implementer(IBlobInventory)
class FileInventory:
    """What a ``FileBlobStore``'s data directory holds, for the consistency check."""

    def __init__(self, store: FileBlobStore) -> None:
        self._store = store

    def list_originals(self) -> list[tuple[ImageId, datetime]]:
        found = []
        for entry in _entries(self._store.originals):
            if entry.is_file() and ImageId.is_valid(entry.name):
                found.append((ImageId(entry.name), _mtime(entry)))
        return found

    def list_derived(self) -> list[tuple[DerivedSpec, datetime]]:
        found = []
        for directory in _entries(self._store.derived):
            if not (directory.is_dir() and ImageId.is_valid(directory.name)):
                continue
            for entry in _entries(Path(directory.path)):
                spec = stored_derived(directory.name, entry.name)
                if spec is not None and entry.is_file():
                    found.append((spec, _mtime(entry)))
        return found

    def list_reduced(self) -> list[tuple[ImageId, int, datetime]]:
        found = []
        for directory in _entries(self._store.reduced):
            if not (directory.is_dir() and ImageId.is_valid(directory.name)):
                continue
            for entry in _entries(Path(directory.path)):
                if entry.name.isdigit() and entry.name == str(int(entry.name)) and entry.is_file():
                    found.append((ImageId(directory.name), int(entry.name), _mtime(entry)))
        return found

    def remove_reduced(self, image_id: ImageId, side: int, listed: datetime | None = None) -> None:
        self._remove(self._store.reduced_path(image_id, side), listed)
        with contextlib.suppress(OSError):  # an emptied directory goes with its last copy
            (self._store.reduced / ImageId(image_id)).rmdir()

    def list_leftovers(self) -> list[Leftover]:
        found = []
        for directory in (self._store.originals, self._store.derived, self._store.reduced):
            for path in directory.rglob(".*") if directory.is_dir() else ():
                for prefix in (TEMP_PREFIX, _TRASH_PREFIX):
                    if path.name.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):
                            modified = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
                            owner = owner_of_tag(path.name.removeprefix(prefix))
                            found.append(Leftover(str(path), modified, owner))
        # Image directories a delete or a repair emptied: nothing left but published traits, which are
        # published again by the next ``auto`` request that needs them.
        for entry in _entries(self._store.derived):
            if (
                entry.is_dir(follow_symlinks=False)
                and ImageId.is_valid(entry.name)
                and set(os.listdir(entry.path)) <= _TRAIT_MARKS.keys()
            ):
                found.append(Leftover(entry.path, _mtime(entry), ""))
        return found

    def remove_original(self, image_id: ImageId, listed: datetime) -> None:
        self._remove(self._store.original_path(image_id), listed)

    def remove_derived(self, spec: DerivedSpec, listed: datetime | None = None) -> None:
        self._remove(self._store.derived_path(spec), listed)

    def remove_leftover(self, leftover: Leftover) -> None:
        self._remove(leftover.name, leftover.modified)

    def _remove(self, path: str, listed: datetime | None) -> None:
        """Remove a file, a retired tree or an empty image directory under the data directory; with
        ``listed``, only if not modified since it was listed at that time."""
        target = Path(os.path.abspath(path))  # "..", not symlinks: a symlink is removed, not followed
        if Path(os.path.abspath(self._store.root)) not in target.parents:
            raise ValueError(f"{path} is outside the data directory {self._store.root}")
        try:
            st = target.lstat()
        except FileNotFoundError:
            return
        if listed is not None and datetime.fromtimestamp(st.st_mtime, UTC) != listed:
            return  # changed since it was listed: someone is using it
        if not stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        elif target.name.startswith(_TRASH_PREFIX):
            shutil.rmtree(target, ignore_errors=True)
        else:  # an image directory: only while it holds nothing but traits
            with contextlib.suppress(OSError):
                for mark in _TRAIT_MARKS:
                    with contextlib.suppress(FileNotFoundError):
                        (target / mark).unlink()
                target.rmdir()


def apache_etag(st: os.stat_result) -> str:
    """Apache's ``FileETag MTime Size``: the size, then the mtime in microseconds, in hex."""
    return f'"{st.st_size:x}-{st.st_mtime_ns // 1000:x}"'


def nginx_etag(st: os.stat_result) -> str:
    """nginx's built-in ETag of a static file: the mtime in whole seconds, then the size, in hex."""
    return f'"{st.st_mtime_ns // 1_000_000_000:x}-{st.st_size:x}"'


# So that a front server serving the file itself sends the very validator pymager sends for it.
_ETAG_FORMULAS: dict[EtagStyle, Callable[[os.stat_result], str]] = {
    "apache": apache_etag,
    "nginx": nginx_etag,
}


def _open(
    path: str, content_type: str, etag: Callable[[os.stat_result], str], decoded: str = ""
) -> StoredFile | None:
    """Open ``path`` for serving and describe it; ``None`` if there is no file there. An original, which
    a generation also decodes, is read through a ``_StoreFile`` (``decoded`` says what reads it); a
    derived image, served on every hit, through a plain file."""
    doing = decoded or "reading a derived image"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise storage_failure(exc, doing) from exc
    # The caller closes it after serving.
    handle: BinaryIO = io.BufferedReader(_StoreFile(fd, decoded)) if decoded else open(fd, "rb")  # noqa: SIM115
    try:
        st = os.fstat(fd)
    except OSError as exc:
        handle.close()
        raise storage_failure(exc, doing) from exc
    return StoredFile(
        file=handle,
        content_type=content_type,
        size=st.st_size,
        modified=datetime.fromtimestamp(st.st_mtime, UTC),
        etag=etag(st),
    )


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as iterator:
            return list(iterator)
    except FileNotFoundError:
        return []


def _mtime(entry: os.DirEntry[str]) -> datetime:
    return datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC)
