"""Turns for SQLite's writers, across the threads and processes of one host.

SQLite has one writer at a time, and a writer that finds the write lock taken sleeps 1, 2, 5, 10 … ms
between tries (its busy handler, which Python's sqlite3 cannot replace), however soon the lock frees:
under four concurrent generations, request threads spent half their time so (benchmarks/README.md).
Writers therefore take turns before ``BEGIN IMMEDIATE``: the threads of a process on a lock, the
processes on an ``flock`` of ``<database>.writers`` beside the database file, both of which hand over at
once. The file holds nothing and is never removed; a process that dies releases its turn with its
descriptors. The turn only orders writers that ask through pymager: SQLite's own lock still guards the
database against anything else.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path


class WriterTurns:
    """Turns of the writers of the SQLite database beside ``path`` (``None``: an in-memory database,
    whose writers are all in this process: a thread lock is enough)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._pid = -1
        self._threads = threading.Lock()
        self._fd = -1
        self._opening = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for this writer's turn; return whether it came."""
        deadline = time.monotonic() + timeout
        self._for_this_process()
        if not self._threads.acquire(timeout=timeout):
            return False
        if self._path is None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except BaseException:
            self._threads.release()
            raise
        return self._wait_for_process_turn(deadline)

    def release(self) -> None:
        try:
            if self._path is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _wait_for_process_turn(self, deadline: float) -> bool:
        """``flock`` has no timed wait: block in a helper thread. If the caller gives up first, the
        helper keeps this process's thread turn until it gets the file's, then hands both back, so no
        other thread of this process can take the file's turn meanwhile on the same descriptor."""
        decided = threading.Lock()
        turn = threading.Event()
        failed = threading.Event()
        gave_up = False

        def block() -> None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:
                with decided:
                    if gave_up:  # nobody waits for this turn: give the thread turn back
                        self._threads.release()
                    else:
                        failed.set()
                        turn.set()
                return
            with decided:
                if not gave_up:
                    turn.set()
                    return
            self.release()

        threading.Thread(target=block, name="pymager-sqlite-writer-turn", daemon=True).start()
        turn.wait(max(0.0, deadline - time.monotonic()))
        with decided:
            if not turn.is_set():
                gave_up = True
                return False
        if failed.is_set():
            self._threads.release()
            return False
        return True

    def _for_this_process(self) -> None:
        # A forked worker must not share its parent's descriptor: flock locks belong to the open file,
        # so processes sharing one would all hold the turn at once.
        if self._pid == os.getpid():
            return
        with self._opening:
            if self._pid != os.getpid():
                if self._fd >= 0:
                    # the parent's descriptor: closed here, never unlocked (the turn may be the parent's)
                    os.close(self._fd)
                    self._fd = -1
                self._threads = threading.Lock()
                if self._path is not None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._pid = os.getpid()
