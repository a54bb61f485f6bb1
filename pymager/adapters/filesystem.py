"""Originals and derived images as files under the data directory, published atomically.

Layout (a front web server can compute a derived path from its URL alone)::

    <data>/originals/<id>
    <data>/derived/<id>/<W>x<H>.<ext>
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

from pymager.domain import DerivedSpec, ImageId, StoredFile
from pymager.errors import InvalidImageId, PymagerError, ServiceUnavailable
from pymager.interfaces import IBlobStore, IStagedFile
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

    def digest(self) -> tuple[int, str]:
        self.file.flush()
        sha256 = hashlib.sha256()
        size = 0
        with open(self.path, "rb") as reader:
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
        return os.path.join(self._originals_root, ImageId(image_id))

    def derived_path(self, spec: DerivedSpec) -> str:
        # On every cache hit: plain string joins (pathlib cost 5 µs of a ~20 µs hit).
        name = f"{spec.size}.{spec.format.extension}"
        return os.path.join(self._derived_root, ImageId(spec.image_id), name)

    def stage_original(self, image_id: ImageId) -> StagedFile:
        return StagedFile(Path(self.original_path(image_id)))

    def stage_derived(self, spec: DerivedSpec) -> StagedFile:
        return StagedFile(Path(self.derived_path(spec)))

    def open(self, path: str, content_type: str) -> StoredFile | None:
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

    def exists(self, path: str) -> bool:
        return os.path.isfile(path)

    def retire_derived(self, image_id: ImageId) -> str | None:
        # One rename: every derived file of the id disappears at once for readers and a front server,
        # however long removing them takes.
        trash = self.derived / f"{_TRASH_PREFIX}{file_tag()}{uuid.uuid4().hex}"
        try:
            os.replace(self._derived_directory(image_id), trash)
        except FileNotFoundError:
            return None
        return str(trash)

    def delete_image(self, image_id: ImageId) -> None:
        retired = self.retire_derived(image_id)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.original_path(image_id))

    def check(self) -> None:
        for directory in (self.originals, self.derived):
            if not (directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)):
                raise ServiceUnavailable(f"the data directory {directory} is missing or not writable")

    def list_originals(self) -> list[tuple[ImageId, datetime]]:
        found = []
        for entry in _entries(self.originals):
            if entry.is_file() and _is_image_id(entry.name):
                found.append((ImageId(entry.name), _mtime(entry)))
        return found

    def list_derived(self) -> list[tuple[DerivedSpec, datetime]]:
        found = []
        for directory in _entries(self.derived):
            if not (directory.is_dir() and _is_image_id(directory.name)):
                continue
            for entry in _entries(Path(directory.path)):
                spec = _derived_spec(directory.name, entry.name)
                if spec is not None and entry.is_file():
                    found.append((spec, _mtime(entry)))
        return found

    def list_temporary(self) -> list[tuple[str, datetime, str]]:
        found = []
        for directory in (self.originals, self.derived):
            for path in directory.rglob(".*") if directory.is_dir() else ():
                for prefix in (TEMP_PREFIX, _TRASH_PREFIX):
                    if path.name.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):
                            modified = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
                            found.append((str(path), modified, owner_of_tag(path.name.removeprefix(prefix))))
        for entry in _entries(self.derived):  # image directories a delete or a repair emptied
            if (
                entry.is_dir(follow_symlinks=False)
                and _is_image_id(entry.name)
                and not os.listdir(entry.path)
            ):
                found.append((entry.path, _mtime(entry), ""))
        return found

    def remove(self, path: str, listed: datetime | None = None) -> None:
        target = Path(os.path.abspath(path))  # "..", not symlinks: a symlink is removed, not followed
        if Path(os.path.abspath(self.root)) not in target.parents:
            raise ValueError(f"{path} is outside the data directory {self.root}")
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

    def _derived_directory(self, image_id: ImageId) -> Path:
        return self.derived / ImageId(image_id)


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
    canonical = spec.image_id == image_id and file_name == f"{spec.size}.{spec.format.extension}"
    return spec if canonical else None
