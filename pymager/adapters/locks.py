"""Generation locks as ``flock`` on lock files beside the derived images, for registries that live on
one host (SQLite). The lock file of ``derived/<id>/<W>x<H>.<ext>`` is ``derived/<id>/.lock-<W>x<H>.<ext>``:
it goes away with the image's directory when the original is deleted, and is never served.

``flock`` has no timed wait, so ``wait`` blocks in a helper thread and waits on an ``Event`` with the
timeout. A helper whose caller gave up stays blocked until the holder releases (or dies), then exits:
at most one such thread per waiting request, living no longer than the generation it waits for.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from zope.interface import implementer

from pymager.domain import DerivedSpec
from pymager.interfaces import IGenerationLocks, IHeldLock

_LOCK_PREFIX = ".lock-"


@implementer(IHeldLock)
class HeldFileLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases its flock


@implementer(IGenerationLocks)
class FileLocks:
    def __init__(self, root: Path) -> None:
        self._derived = root / "derived"

    def try_acquire(self, spec: DerivedSpec) -> HeldFileLock | None:
        fd = self._open(spec, create_directory=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return HeldFileLock(fd)

    def wait(self, spec: DerivedSpec, timeout: float) -> bool:
        try:
            fd = self._open(spec, create_directory=False)
        except FileNotFoundError:  # the image's directory is gone: nobody can hold its lock
            return True
        released = threading.Event()

        def block() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            finally:
                os.close(fd)
                released.set()

        threading.Thread(target=block, name=f"pymager-wait-{spec.key}", daemon=True).start()
        return released.wait(timeout)

    def _open(self, spec: DerivedSpec, *, create_directory: bool) -> int:
        directory = self._derived / spec.image_id
        if create_directory:
            directory.mkdir(parents=True, exist_ok=True)
        name = f"{_LOCK_PREFIX}{spec.size}.{spec.format.extension}"
        return os.open(directory / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
