"""What the soak stored and what it saw: per id, every version uploaded (its SHA-256, colour and
lifetime) and an epoch that changes around each mutation; every request made; the outage windows.

Mutations of one id are serialised (one writer per id, as a real owner of an id would be) while reads
race them freely. A read is judged against the versions *live during it* (uploaded before it ended, not
yet confirmed deleted when it started); a read that began and ended in one even epoch saw no mutation,
so its answer must be exactly the current state, and two such reads of one derived key in one epoch must
get the same bytes and ETag.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Version:
    number: int
    template: str
    colour: int
    tag: bytes
    sha256: str
    size: int
    upload_started: float
    stored_at: float | None = None  # the 201, or found stored after an ambiguous answer
    deleted_at: float | None = None  # the 204 (or 404) of a DELETE: gone from then on
    never_stored: bool = False  # an ambiguous upload found absent afterwards

    def live_during(self, start: float, end: float) -> bool:
        if self.never_stored:
            return False
        return self.upload_started <= end and (self.deleted_at is None or self.deleted_at >= start)


@dataclass(frozen=True)
class Seen:
    """A derived answer remembered for hits and conditional GETs in one epoch."""

    path: str
    accept: str | None
    sha256: str
    etag: str


class Entry:
    """One id. ``epoch`` is even while no mutation is in flight or unsettled."""

    def __init__(self, image_id: str) -> None:
        self.image_id = image_id
        self.mutex = threading.Lock()  # held by the one writer of this id
        self._state = threading.Lock()
        self.versions: list[Version] = []
        self.epoch = 0
        self.present = False
        # An upload or delete whose outcome the answer did not tell (503, connection lost): settled
        # by the next writer before it does anything else.
        self.unsettled: str | None = None
        self.seen: dict[str, Seen] = {}  # derived key -> answer, in the current epoch

    @property
    def current(self) -> Version | None:
        with self._state:
            return self.versions[-1] if self.present and self.versions else None

    def begin_mutation(self) -> None:
        with self._state:
            if self.epoch % 2 == 0:
                self.epoch += 1
            self.seen = {}

    def end_mutation(self) -> None:
        with self._state:
            if self.epoch % 2 == 1:
                self.epoch += 1

    def snapshot(self) -> tuple[int, Version | None]:
        with self._state:
            return self.epoch, (self.versions[-1] if self.present and self.versions else None)

    def add_version(self, version: Version) -> None:
        with self._state:
            self.versions.append(version)

    def live_versions(self, start: float, end: float) -> list[Version]:
        with self._state:
            return [version for version in self.versions if version.live_during(start, end)]

    def remember(self, epoch: int, key: str, seen: Seen) -> Seen | None:
        """Remember ``seen`` for ``key`` if the epoch is still ``epoch``; return what was remembered
        before for it in this epoch (None if nothing)."""
        with self._state:
            if self.epoch != epoch:
                return None
            before = self.seen.get(key)
            if before is None:
                self.seen[key] = seen
            return before

    def seen_items(self) -> list[tuple[str, Seen]]:
        with self._state:
            return list(self.seen.items())


@dataclass
class Record:
    """One request and its answer (``status`` None: no answer, ``error`` says why)."""

    kind: str
    server: str
    method: str
    path: str
    start: float
    end: float
    status: int | None
    error: str | None = None
    retry_after: bool = False
    expected: frozenset[int] = frozenset()
    stable: bool = False  # no mutation of its id during it: ``expected`` is what it must get
    problem: str | None = None  # of an error answer: its problem type and detail


@dataclass
class Window:
    """A planned outage: ``servers`` are affected from ``start`` to ``end`` (monotonic seconds)."""

    name: str
    servers: frozenset[str]
    start: float
    end: float | None = None
    refusals_expected: bool = False  # the server is down: connections are refused or cut

    def covers(self, record: Record) -> bool:
        end = self.end if self.end is not None else float("inf")
        return record.server in self.servers and record.start <= end and record.end >= self.start


@dataclass
class Ledger:
    """Everything recorded, shared by the client threads."""

    started: float = field(default_factory=time.monotonic)
    records: list[Record] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    findings: list[dict[str, object]] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    def find(self, check: str, **detail: object) -> None:
        """A failed check, with what shows it (the request, the answer)."""
        with self._lock:
            self.findings.append(
                {"check": check, "at_s": round(time.monotonic() - self.started, 2), **detail}
            )

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[name] += amount

    def window_for(self, record: Record) -> Window | None:
        for window in self.windows:
            if window.covers(record):
                return window
        return None
