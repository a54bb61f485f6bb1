"""In-process single flight: concurrent callers for one key share the first caller's work."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pymager.errors import PymagerError

_T = TypeVar("_T")


@dataclass
class _Flight(Generic[_T]):
    done: threading.Event = field(default_factory=threading.Event)
    result: _T | None = None
    error: BaseException | None = None


class FlightTimeout(Exception):
    """A follower waited longer than its timeout for the leader's result."""


class SingleFlight(Generic[_T]):
    """Run ``work`` once per key at a time; callers arriving meanwhile wait for and share its outcome.

    Followers block on an ``Event`` (no polling) and all wake together when the leader finishes, so
    they never serialise behind each other.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[_T]] = {}

    def run(self, key: str, work: Callable[[], _T], timeout: float) -> tuple[_T, bool]:
        """Return ``(result, shared)``; ``shared`` is true for a follower. A leader's exception is
        raised in every caller (each follower raises its own copy, caused by the leader's); a follower
        that waits past ``timeout`` gets ``FlightTimeout``."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leader:
            try:
                flight.result = work()
            except BaseException as exc:
                flight.error = exc
                raise
            finally:
                with self._lock:
                    del self._flights[key]
                flight.done.set()
            return flight.result, False
        if not flight.done.wait(timeout):
            raise FlightTimeout(key)
        if flight.error is not None:
            own = _copy_of(flight.error)
            if own is flight.error:
                raise own
            raise own from flight.error
        return flight.result, True  # type: ignore[return-value]


def _copy_of(error: BaseException) -> BaseException:
    """A fresh exception like ``error``, without its traceback, for one follower to raise: raising the
    leader's own object in every follower would chain each follower's frames onto its one traceback,
    so that every logged traceback repeated all the others.

    pymager's own errors hold their state in ``args`` and attributes (their constructors format a
    message, so they are not called again); any other is copied by its pickling protocol
    (``copy.copy``), which keeps what built-in exceptions hold outside ``args`` (an ``OSError``'s file
    name). ``error`` itself if that fails."""
    try:
        if isinstance(error, PymagerError):
            own = type(error).__new__(type(error), *error.args)
            own.__dict__.update(vars(error))
            return own
        return copy.copy(error)
    except Exception:  # an exception class that cannot be copied: share the object
        return error
