"""Generation locks as ``flock`` on lock files, for registries that live on one host (SQLite).

The lock files are a fixed set of 4096 buckets, ``<data>/locks/<hash>.lock``, chosen by a hash of the
derived image's name: requests can never make pymager create files (a GET for an unknown id creates
nothing), and nothing is left to clean up. Two images sharing a bucket only make one wait for the
other's generation, which is rare with a handful of concurrent generations and never wrong: a waiter
re-checks its own file when it wakes.

``flock`` has no timed wait, so ``wait`` blocks in a helper thread and waits on an ``Event`` with the
timeout. A helper whose caller gave up stays blocked until the holder releases (or dies), then exits:
at most one such thread per waiting request, living no longer than the generation it waits for.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

from zope.interface import implementer

from pymager.domain import DerivedSpec
from pymager.errors import storage_failure
from pymager.interfaces import IGenerationLocks, IHeldLock

BUCKETS = 4096


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
        self._directory = root / "locks"

    def try_acquire(self, spec: DerivedSpec) -> HeldFileLock | None:
        fd = self._open(spec)
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
        fd = self._open(spec)
        released = threading.Event()

        def block() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            finally:
                os.close(fd)
                released.set()

        threading.Thread(target=block, name=f"pymager-wait-{spec.key}", daemon=True).start()
        return released.wait(timeout)

    def _open(self, spec: DerivedSpec) -> int:
        try:
            self._directory.mkdir(exist_ok=True)
            return os.open(self._directory / bucket_name(spec), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:  # the data directory full or failing (read-only): a storage failure
            raise storage_failure(exc, "locking the derived image") from exc


def bucket_name(spec: DerivedSpec) -> str:
    """The lock file of ``spec``: one of ``BUCKETS`` names, by a hash of the canonical image name."""
    bucket = int.from_bytes(hashlib.sha256(spec.key.encode()).digest()[:4], "big") % BUCKETS
    return f"{bucket:03x}.lock"
