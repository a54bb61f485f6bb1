"""Generation locks on real flock files and real PostgreSQL advisory locks: exclusive, waitable with a
timeout, and freed when their holder dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from zope.interface.verify import verifyObject

from pymager.adapters.db import make_engine
from pymager.adapters.db.locks import AdvisoryLocks, lock_key
from pymager.adapters.locks import BUCKETS, FileLocks, bucket_name
from pymager.domain import DerivedSpec
from pymager.interfaces import IGenerationLocks, IHeldLock

SPEC = DerivedSpec.parse("cat-100x100.jpg")
OTHER = DerivedSpec.parse("cat-100x100.png")


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url: str = request.getfixturevalue("fresh_postgres_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("file", id="flock"),
        pytest.param("postgres", id="advisory", marks=pytest.mark.postgres),
    ]
)
def locks(request: pytest.FixtureRequest, tmp_path: Path) -> IGenerationLocks:
    if request.param == "postgres":
        return AdvisoryLocks(request.getfixturevalue("engine"))
    return FileLocks(tmp_path)


def _holder_script(locks: IGenerationLocks, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Python code that takes SPEC's lock in another process, says so, then waits forever."""
    if isinstance(locks, AdvisoryLocks):
        url = request.getfixturevalue("fresh_postgres_url")
        make = f"from pymager.adapters.db import make_engine\nlocks = AdvisoryLocks(make_engine({url!r}))"
    else:
        make = f"from pathlib import Path\nlocks = FileLocks(Path({str(tmp_path)!r}))"
    return textwrap.dedent(
        """
        import sys
        from pymager.adapters.db.locks import AdvisoryLocks
        from pymager.adapters.locks import BUCKETS, FileLocks, bucket_name
        from pymager.domain import DerivedSpec
        {make}
        held = locks.try_acquire(DerivedSpec.parse("cat-100x100.jpg"))
        print("held" if held is not None else "busy", flush=True)
        sys.stdin.read()
        """
    ).format(make=make)


def test_locks_provide_their_interfaces(locks: IGenerationLocks) -> None:
    assert verifyObject(IGenerationLocks, locks)
    held = locks.try_acquire(SPEC)
    assert held is not None
    assert verifyObject(IHeldLock, held)
    held.release()


def test_a_lock_is_exclusive_until_released(locks: IGenerationLocks) -> None:
    held = locks.try_acquire(SPEC)
    assert held is not None
    assert locks.try_acquire(SPEC) is None
    other = locks.try_acquire(OTHER)  # another image is another lock
    assert other is not None
    held.release()
    held.release()  # twice is harmless
    again = locks.try_acquire(SPEC)
    assert again is not None
    again.release()
    other.release()


def test_wait_gives_up_after_its_timeout_while_the_lock_is_held(locks: IGenerationLocks) -> None:
    held = locks.try_acquire(SPEC)
    assert held is not None
    assert locks.wait(SPEC, 0.2) is False
    held.release()


def test_wait_returns_at_once_for_a_free_lock(locks: IGenerationLocks) -> None:
    assert locks.wait(SPEC, 10) is True


def test_every_waiter_wakes_when_the_holder_releases(locks: IGenerationLocks) -> None:
    held = locks.try_acquire(SPEC)
    assert held is not None
    results: list[bool] = []
    lock = threading.Lock()

    def wait() -> None:
        outcome = locks.wait(SPEC, 30)
        with lock:
            results.append(outcome)

    waiters = [threading.Thread(target=wait) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    held.release()
    for waiter in waiters:
        waiter.join()
    assert results == [True, True, True]
    assert locks.try_acquire(SPEC) is not None


def test_a_holder_killed_mid_generation_frees_the_lock(
    locks: IGenerationLocks, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _holder_script(locks, tmp_path, request)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert locks.try_acquire(SPEC) is None
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
        assert locks.wait(SPEC, 30) is True
        taken = locks.try_acquire(SPEC)
        assert taken is not None
        taken.release()
    finally:
        holder.kill()
        holder.wait()


def test_file_locks_create_nothing_per_image(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path)
    for n in range(1, 50):
        held = locks.try_acquire(DerivedSpec.parse(f"never-uploaded-{n}-1x1.png"))
        assert held is not None
        held.release()
    assert locks.wait(DerivedSpec.parse("nobody-1x1.png"), 10) is True
    assert sorted(path.name for path in tmp_path.iterdir()) == ["locks"]
    assert len(list((tmp_path / "locks").iterdir())) <= 50
    assert all(len(name) == len("fff.lock") for name in (p.name for p in (tmp_path / "locks").iterdir()))


def test_file_lock_buckets_are_stable_and_bounded() -> None:
    names = {bucket_name(DerivedSpec.parse(f"cat-{n}x{n}.png")) for n in range(1, 20000)}
    assert BUCKETS * 0.95 < len(names) <= BUCKETS  # bounded, and well spread
    assert bucket_name(SPEC) == bucket_name(DerivedSpec.parse("cat-100x100.jpeg"))


def test_advisory_lock_keys_are_stable_signed_64_bit_and_distinct() -> None:
    keys = {lock_key(DerivedSpec.parse(f"cat-{n}x{n}.png")) for n in range(1, 500)}
    assert len(keys) == 499
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert lock_key(SPEC) == lock_key(DerivedSpec.parse("cat-100x100.jpeg"))  # jpeg is jpg
