"""A local cache of a bucket's objects under the data directory, least recently used out first.

Entries are files named by what the caller asks for (``derived/<id>/<incarnation>/<name>``), each with
the object's ``Last-Modified`` as its mtime (so validators made from the file agree on every host) and
its last use as its atime (set by ``open``, at most once a minute per entry, since ``relatime`` mounts do
not keep atimes). A miss downloads the object once however many threads ask (single flight per name),
to a temporary file beside the entry, renamed into place when complete: a reader sees a whole entry or
none. When the entries pass ``max_bytes`` the least recently used are removed down to 90 % of it; an
entry removed while open stays readable to whoever opened it.

The cache is this host's alone and may be removed at any time: it holds nothing the bucket lacks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pymager.adapters.filesystem import TEMP_PREFIX, StagedFile
from pymager.errors import StorageFailed, storage_failure
from pymager.owners import file_tag
from pymager.singleflight import FlightTimeout, SingleFlight

# An entry's atime is refreshed on a hit only when older than this: one metadata write a minute at
# most, however hot the entry.
_TOUCH_AFTER_NS = 60 * 1_000_000_000
_EVICT_TO = 0.9
_TRASH_PREFIX = ".trash-"


class ObjectCache:
    """Cached objects under ``root``, at most about ``max_bytes`` of them (and the newest entry, however
    large)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._flights: SingleFlight[bool] = SingleFlight()
        self._counting = threading.Lock()
        self._bytes: int | None = None  # what the entries take, counted at the first fill

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def open(self, name: str) -> tuple[BinaryIO, os.stat_result] | None:
        """The entry ``name`` opened for reading with its ``stat``, or ``None`` when it is not cached."""
        path = self.path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise storage_failure(exc, "reading the local cache") from exc
        handle = open(fd, "rb")  # noqa: SIM115  (the caller closes it after serving)
        try:
            st = os.fstat(fd)
            if time.time_ns() - st.st_atime_ns > _TOUCH_AFTER_NS:
                os.utime(fd, ns=(time.time_ns(), st.st_mtime_ns))
        except OSError as exc:
            handle.close()
            raise storage_failure(exc, "reading the local cache") from exc
        return handle, st

    def contains(self, name: str) -> bool:
        return os.path.isfile(self.path(name))

    def fill(self, name: str, download: Callable[[BinaryIO], datetime | None], timeout: float) -> bool:
        """Make ``name`` an entry by ``download`` (which writes the object to the file it is given and
        returns its ``Last-Modified``, or ``None`` when there is no such object); one download per name
        however many threads ask at once. Return whether the entry now exists."""
        try:
            done, _ = self._flights.run(name, lambda: self._fill(name, download), timeout)
        except FlightTimeout:
            raise StorageFailed(f"downloading {name} into the local cache takes too long", 5) from None
        return done

    def _fill(self, name: str, download: Callable[[BinaryIO], datetime | None]) -> bool:
        if self.contains(name):
            return True
        staged = self.stage(name)
        try:
            modified = download(staged.file)
            if modified is None:
                return False
            self.adopt(name, staged, modified)
        finally:
            staged.discard()
        return True

    def stage(self, name: str) -> StagedFile:
        """A temporary file beside the entry ``name``, which ``adopt`` makes the entry."""
        return StagedFile(Path(self.path(name)), "filling the local cache")

    def adopt(self, name: str, staged: StagedFile, modified: datetime) -> None:
        """Publish ``staged`` (from ``stage(name)``) as the entry ``name``, with ``modified`` as its
        mtime."""
        staged.file.flush()
        stamp = int(modified.timestamp()) * 1_000_000_000
        with contextlib.suppress(OSError):
            os.utime(staged.path, ns=(time.time_ns(), stamp))
        size = os.stat(staged.path).st_size
        staged.publish()
        self._added(size, self.path(name))

    def drop(self, name: str) -> None:
        """Remove the entry or the tree of entries ``name`` (missing is no error): renamed out of sight
        at once, then removed."""
        path = Path(self.path(name))
        trash = self.root / f"{_TRASH_PREFIX}{file_tag()}{uuid.uuid4().hex}"
        try:
            os.replace(path, trash)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_failure(exc, "clearing the local cache") from exc
        if trash.is_dir():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                trash.unlink()

    def _added(self, size: int, kept: str) -> None:
        with self._counting:
            if self._bytes is None:
                self._bytes = self._total()
            else:
                self._bytes += size
            if self._bytes > self.max_bytes:
                self._bytes = self._evict(kept)

    def _entries(self) -> list[tuple[int, int, str]]:
        """(atime, size, path) of every entry."""
        found = []
        for directory, _, names in os.walk(self.root):
            for name in names:
                if name.startswith((TEMP_PREFIX, _TRASH_PREFIX)):
                    continue
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(path)
                    found.append((st.st_atime_ns, st.st_size, path))
        return found

    def _total(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _evict(self, kept: str) -> int:
        """Remove the least recently used entries (never ``kept``, the one just added) down to 90 % of
        ``max_bytes``; return what is left. Counted afresh: other processes of this host share it."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes * _EVICT_TO:
                break
            if path == kept:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            total -= size
        return total
