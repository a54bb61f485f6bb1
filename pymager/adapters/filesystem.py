"""Originals and derived images as files under the data directory, published atomically: the blob store
the service uses (``FileBlobStore``) and the inventory the consistency check uses (``FileInventory``).

Layout (a front web server computes a derived path from its URL alone)::

    <data>/originals/<id>
    <data>/derived/<id>/<W>x<H>[-<mode>].<ext>   (fill names no mode; fit and pad do)
    .tmp-<host>~<pid>~*     temporary files, always beside their final path, never served
    .trash-<host>~<pid>~*   derived directories being removed by a delete

Temporary names carry their creator, so the consistency check can sweep those of dead processes at once.

A staged file is written to a temporary file in the target's directory, fsynced, renamed over the
final path with ``os.replace`` and the directory fsynced, so a reader sees the old file, the new file or
none, never part of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from zope.interface import implementer

from pymager.domain import DerivedSpec, ImageFormat, ImageId, StoredFile
from pymager.errors import InvalidImageId, PymagerError, ServiceUnavailable
from pymager.interfaces import IBlobInventory, IBlobStore, IRetiredFiles, IStagedFile, Leftover
from pymager.owners import file_tag, owner_of_tag

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
_FILE_MODE = 0o644


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@implementer(IStagedFile)
class StagedFile:
    """A temporary file beside ``final_path``; ``publish`` moves it into place atomically."""

    def __init__(self, final_path: Path) -> None:
        final_path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(prefix=TEMP_PREFIX + file_tag(), dir=final_path.parent)
        os.fchmod(fd, _FILE_MODE)
        self.file: BinaryIO = os.fdopen(fd, "w+b")
        self.path = temp_path
        self._final_path = final_path
        self._done = False

    def open_for_reading(self) -> BinaryIO:
        self.file.flush()
        return open(self.path, "rb")

    def digest(self) -> tuple[int, str]:
        sha256 = hashlib.sha256()
        size = 0
        with self.open_for_reading() as reader:
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                sha256.update(chunk)
                size += len(chunk)
        return size, sha256.hexdigest()

    def publish(self) -> None:
        if self._done:
            raise RuntimeError(f"{self.path} was already published or discarded")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.path, self._final_path)
        self._done = True
        _fsync_directory(self._final_path.parent)

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self.file.close()
        with contextlib.suppress(FileNotFoundError):  # a concurrent delete removed its directory
            os.unlink(self.path)


@implementer(IRetiredFiles)
class RetiredDirectory:
    """An image's derived directory, renamed out of sight (``.trash-…``) until ``remove``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@implementer(IBlobStore)
class FileBlobStore:
    """Files under one data directory (which may be shared by several processes and hosts)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.originals = root / "originals"
        self.derived = root / "derived"
        self._originals_root = str(self.originals)
        self._derived_root = str(self.derived)

    def prepare(self) -> None:
        """Create the directory layout; raise ``ServiceUnavailable`` if it cannot be written."""
        for directory in (self.originals, self.derived):
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

    def open_original(self, image_id: ImageId, image_format: ImageFormat) -> StoredFile | None:
        return _open(self.original_path(image_id), image_format.mime_type)

    def open_derived(self, spec: DerivedSpec) -> StoredFile | None:
        return _open(self.derived_path(spec), spec.format.mime_type)

    def has_original(self, image_id: ImageId) -> bool:
        return os.path.isfile(self.original_path(image_id))

    def has_derived(self, spec: DerivedSpec) -> bool:
        return os.path.isfile(self.derived_path(spec))

    def stage_original(self, image_id: ImageId) -> StagedFile:
        return StagedFile(Path(self.original_path(image_id)))

    def stage_derived(self, spec: DerivedSpec) -> StagedFile:
        return StagedFile(Path(self.derived_path(spec)))

    def retire_derived(self, image_id: ImageId) -> RetiredDirectory | None:
        # One rename: every derived file of the id disappears at once for readers and a front server,
        # however long removing them takes.
        trash = self.derived / f"{_TRASH_PREFIX}{file_tag()}{uuid.uuid4().hex}"
        try:
            os.replace(self.derived_directory(image_id), trash)
        except FileNotFoundError:
            return None
        return RetiredDirectory(str(trash))

    def delete_image(self, image_id: ImageId) -> None:
        retired = self.retire_derived(image_id)
        if retired is not None:
            retired.remove()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.original_path(image_id))

    def check(self) -> None:
        for directory in (self.originals, self.derived):
            if not (directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)):
                raise ServiceUnavailable(f"the data directory {directory} is missing or not writable")

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
            if entry.is_file() and _is_image_id(entry.name):
                found.append((ImageId(entry.name), _mtime(entry)))
        return found

    def list_derived(self) -> list[tuple[DerivedSpec, datetime]]:
        found = []
        for directory in _entries(self._store.derived):
            if not (directory.is_dir() and _is_image_id(directory.name)):
                continue
            for entry in _entries(Path(directory.path)):
                spec = _derived_spec(directory.name, entry.name)
                if spec is not None and entry.is_file():
                    found.append((spec, _mtime(entry)))
        return found

    def list_leftovers(self) -> list[Leftover]:
        found = []
        for directory in (self._store.originals, self._store.derived):
            for path in directory.rglob(".*") if directory.is_dir() else ():
                for prefix in (TEMP_PREFIX, _TRASH_PREFIX):
                    if path.name.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):
                            modified = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
                            owner = owner_of_tag(path.name.removeprefix(prefix))
                            found.append(Leftover(str(path), modified, owner))
        for entry in _entries(self._store.derived):  # image directories a delete or a repair emptied
            if (
                entry.is_dir(follow_symlinks=False)
                and _is_image_id(entry.name)
                and not os.listdir(entry.path)
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
        else:
            with contextlib.suppress(OSError):  # an image directory: only while it is still empty
                target.rmdir()


def _open(path: str, content_type: str) -> StoredFile | None:
    """Open ``path`` for serving and describe it; ``None`` if there is no file there."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - the caller closes it after serving
    except (FileNotFoundError, NotADirectoryError):
        return None
    st = os.fstat(handle.fileno())
    return StoredFile(
        file=handle,
        content_type=content_type,
        size=st.st_size,
        modified=datetime.fromtimestamp(st.st_mtime, UTC),
        # Apache's "FileETag MTime Size" (size, then mtime in microseconds, in hex), so a front
        # server serving the file itself sends the same validator (deploy/apache).
        etag=f'"{st.st_size:x}-{st.st_mtime_ns // 1000:x}"',
    )


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as iterator:
            return list(iterator)
    except FileNotFoundError:
        return []


def _mtime(entry: os.DirEntry[str]) -> datetime:
    return datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC)


def _is_image_id(name: str) -> bool:
    try:
        ImageId(name)
    except InvalidImageId:
        return False
    return True


def _derived_spec(image_id: str, file_name: str) -> DerivedSpec | None:
    try:
        spec = DerivedSpec.parse(f"{image_id}-{file_name}")
    except PymagerError:
        return None
    canonical = spec.image_id == image_id and file_name == spec.name
    return spec if canonical else None
