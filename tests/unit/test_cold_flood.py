"""The cap on cold requests (``max_waiting_generations``): beyond it a cold request is refused at once
with 503 and a Retry-After, so that cold requests never hold every server thread; hits, /health and
followers of a generation in flight are never refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pymager.config import ConfigError, Settings, load_settings
from pymager.domain import DerivedSpec
from pymager.errors import CorruptImage, ServiceUnavailable
from pymager.service import FIRST_SLOT_SECONDS
from tests.unit.fakes import fake_image
from tests.unit.world import World

REFUSED = "cold requests are in progress already"
DEADLINE = 10.0  # for a background request to reach the state a test waits for


def _wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (another thread changes it) until it holds, failing after ``DEADLINE``."""
    ends = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < ends, "the background request never got there"
        time.sleep(0.01)


@contextmanager
def requests_in_flight(world: World, segments: list[str]) -> Iterator[list[BaseException | None]]:
    """Ask ``segments`` in threads; on exit, open the processor's gate and wait for them. Yields each
    thread's outcome (``None``: served), filled in once they are done."""
    outcomes: list[BaseException | None] = [None] * len(segments)

    def fetch(index: int) -> None:
        try:
            world.service.derived_file(segments[index])
        except BaseException as error:
            outcomes[index] = error

    threads = [threading.Thread(target=fetch, args=(index,)) for index in range(len(segments))]
    for thread in threads:
        thread.start()
    try:
        yield outcomes
    finally:
        if world.processor.gate is not None:
            world.processor.gate.set()
        for thread in threads:
            thread.join()


@pytest.fixture
def crowded() -> World:
    """Room for two cold requests and one generation at a time, with the processor's gate closed."""
    world = World(max_waiting_generations=2, max_concurrent_generations=1, wait_timeout=30)
    world.upload("sample", fake_image())
    world.processor.gate = threading.Event()
    return world


@contextmanager
def cap_reached(world: World) -> Iterator[list[BaseException | None]]:
    """Two cold requests in flight: one generating (held by the processor's gate), one waiting for
    another process's generation of its image. On exit, that process gives up, the gate opens and both
    finish; the yielded outcomes are filled in then."""
    elsewhere = world.locks.try_acquire(DerivedSpec.parse("sample-20x20.png"))
    assert elsewhere is not None
    with requests_in_flight(world, ["sample-10x10.png", "sample-20x20.png"]) as outcomes:
        try:
            assert world.processor.started.wait(DEADLINE)
            _wait_until(lambda: world.metrics.coalesced == 1)  # the second waits on the lock
            yield outcomes
        finally:
            elsewhere.release()  # before the requests are waited for


def test_a_cold_request_beyond_the_cap_is_refused_at_once_with_retry_after(crowded: World) -> None:
    """At the cap, a third cold request gets 503 at once, not after waiting for a generation slot
    (``wait_timeout`` is 30 s: waiting, it would fail later and with the slots' message)."""
    with cap_reached(crowded) as outcomes:
        with pytest.raises(ServiceUnavailable, match=REFUSED) as refused:
            crowded.service.derived_file("sample-30x30.png")
        assert refused.value.retry_after >= 1
        assert len(crowded.processor.derive_calls) == 1
    assert outcomes == [None, None]
    assert len(crowded.processor.derive_calls) == 2


def test_a_refused_request_leaves_nothing_and_succeeds_once_there_is_room(crowded: World) -> None:
    refused = DerivedSpec.parse("sample-30x30.png")
    with cap_reached(crowded):
        with pytest.raises(ServiceUnavailable, match=REFUSED):
            crowded.service.derived_file(refused.key)
        assert all(key[1:3] != (30, 30) for key in crowded.registry.tables.derived)  # no claim
        lock = crowded.locks.try_acquire(refused)  # and no lock left held
        assert lock is not None
        lock.release()
    assert crowded.service.derived_file(refused.key).size > 0
    assert not crowded.blobs.temporary


def test_hits_and_health_are_served_while_the_cap_is_reached(crowded: World) -> None:
    crowded.processor.gate = None
    crowded.service.derived_file("sample-40x40.png")  # published: from now on a hit
    crowded.processor.gate = threading.Event()
    with cap_reached(crowded):
        with pytest.raises(ServiceUnavailable, match=REFUSED):
            crowded.service.derived_file("sample-30x30.png")
        assert crowded.service.derived_file("sample-40x40.png").size > 0
        assert crowded.service.health()["registry"] == "ok"


def test_followers_of_a_cold_request_in_flight_are_not_refused() -> None:
    """They cost no CPU and finish with their leader: the many viewers of one new image all wait for
    it, though the one place is taken (by their leader, waiting for another process)."""
    world = World(max_waiting_generations=1, wait_timeout=30)
    world.upload("sample", fake_image())
    spec = DerivedSpec.parse("sample-10x10.png")
    misses: list[DerivedSpec] = []
    open_derived = world.blobs.open_derived

    def counting(asked: DerivedSpec) -> object:
        found = open_derived(asked)
        if found is None:
            misses.append(asked)
        return found

    world.blobs.open_derived = counting  # type: ignore[assignment,method-assign]
    elsewhere = world.locks.try_acquire(spec)
    assert elsewhere is not None
    with requests_in_flight(world, [spec.key]) as leader:
        try:
            _wait_until(lambda: world.metrics.coalesced == 1)  # the leader waits on the lock
            with pytest.raises(ServiceUnavailable, match=REFUSED):
                world.service.derived_file("sample-30x30.png")
            with requests_in_flight(world, [spec.key] * 10) as followers:
                try:
                    _wait_until(lambda: misses.count(spec) == 11)  # each follower missed, then joined
                finally:
                    elsewhere.release()
        finally:
            elsewhere.release()
    assert leader == [None]
    assert followers == [None] * 10
    assert len(world.processor.derive_calls) == 1


def test_a_failed_generation_gives_its_place_back() -> None:
    world = World(max_waiting_generations=1)
    world.upload("sample", fake_image())

    def explode(*_args: object) -> None:
        raise CorruptImage("the JPEG data is corrupt or truncated: boom")

    derive = world.processor.derive
    world.processor.derive = explode  # type: ignore[method-assign]
    with pytest.raises(CorruptImage):
        world.service.derived_file("sample-10x10.png")
    world.processor.derive = derive  # type: ignore[method-assign]
    assert world.service.derived_file("sample-20x20.png").size > 0


def test_refused_requests_are_told_to_come_back_in_turn_never_later_than_wait_timeout() -> None:
    """Each refused request is sent after those refused before it, about a slot's share of a
    generation apart, so that they come back spread out rather than all in the same second; however
    many are refused, none is told to wait longer than ``wait_timeout``."""
    world = World(max_waiting_generations=1, max_concurrent_generations=1, wait_timeout=10)
    world.upload("sample", fake_image())
    world.processor.gate = threading.Event()
    with requests_in_flight(world, ["sample-10x10.png"]):
        assert world.processor.started.wait(DEADLINE)
        told = []
        for width in range(100, 400):
            with pytest.raises(ServiceUnavailable, match=REFUSED) as refused:
                world.service.derived_file(f"sample-{width}x10.png")
            told.append(refused.value.retry_after)
    assert told[0] == 1
    per_second = round(1 / FIRST_SLOT_SECONDS)  # until this process has timed a generation
    assert told[per_second * 3] > told[0]
    assert max(told) == 10


@pytest.mark.parametrize(
    ("slots", "thread_pool", "cap"),
    [
        (2, 16, 8),  # four per slot, half the threads
        (1, 16, 4),
        (8, 16, 8),  # half the threads, though fewer than four per slot
        (16, 16, 16),  # never fewer than the slots: each slot can be used
        (2, 4, 2),
    ],
)
def test_the_default_cap_is_four_cold_requests_per_slot_within_half_the_threads(
    slots: int, thread_pool: int, cap: int
) -> None:
    settings = Settings.for_directory(
        Path("/nonexistent"), max_concurrent_generations=slots, thread_pool=thread_pool
    )
    assert settings.cold_request_cap == cap


def test_max_waiting_generations_is_read_and_must_be_positive(tmp_path: Path) -> None:
    config = tmp_path / "pymager.ini"
    config.write_text("[pymager]\nmax_waiting_generations = 3\n", encoding="utf-8")
    assert load_settings(config).cold_request_cap == 3
    config.write_text("[pymager]\nmax_waiting_generations = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_waiting_generations = '0'"):
        load_settings(config)
