"""SQLite writers' turns (pymager.adapters.db.turns): one writer at a time across threads and processes,
handed over at once, bounded waits, and a forked worker never sharing its parent's turn."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from pymager.adapters.db.turns import WriterTurns


def test_one_writer_at_a_time_and_the_turn_is_handed_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3.writers"
    first, second = WriterTurns(path), WriterTurns(path)  # two holders of the file, as two processes
    assert first.acquire(1.0)
    assert not second.acquire(0.05)
    handed: list[float] = []

    def wait() -> None:
        assert second.acquire(10.0)
        handed.append(time.monotonic())
        second.release()

    waiter = threading.Thread(target=wait)
    waiter.start()
    deadline = time.monotonic() + 10
    while not any(thread.name == "pymager-sqlite-writer-turn" for thread in threading.enumerate()):
        assert time.monotonic() < deadline, "the waiter never blocked on the file"
        time.sleep(0.005)
    assert handed == []  # blocked on the file, not given the turn
    released = time.monotonic()
    first.release()
    waiter.join(10)
    assert handed
    # SQLite's own busy handler would have slept up to 10 ms or more between tries by now
    assert handed[0] - released < 0.05


def test_a_writer_that_gave_up_leaves_no_turn_held(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3.writers"
    first, second = WriterTurns(path), WriterTurns(path)
    assert first.acquire(1.0)
    assert not second.acquire(0.05)  # its helper thread still waits for the file
    first.release()
    assert second.acquire(5.0)  # the helper handed both turns back
    assert not first.acquire(0.05)
    second.release()
    assert first.acquire(1.0)
    first.release()


def _try_in_child(turns: WriterTurns, result: multiprocessing.Queue[bool]) -> None:
    result.put(turns.acquire(0.2))


def test_a_forked_worker_takes_its_own_turn_not_its_parents(tmp_path: Path) -> None:
    turns = WriterTurns(tmp_path / "registry.sqlite3.writers")
    assert turns.acquire(1.0)
    try:
        context = multiprocessing.get_context("fork")
        result: multiprocessing.Queue[bool] = context.Queue()
        child = context.Process(target=_try_in_child, args=(turns, result))
        child.start()
        child.join(30)
        assert result.get(timeout=10) is False  # the parent's turn is not the child's
    finally:
        turns.release()


def test_an_in_memory_database_orders_this_process_threads_only() -> None:
    turns = WriterTurns(None)
    assert turns.acquire(1.0)
    assert not turns.acquire(0.01)
    turns.release()
    assert turns.acquire(1.0)
    turns.release()
