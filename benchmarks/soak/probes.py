"""Memory and file descriptors of each server process, read from /proc on a schedule: VmRSS from
``/proc/<pid>/status`` and the entries of ``/proc/<pid>/fd``. Samples carry the pid, so a restarted
server's series starts afresh."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProbeSample:
    at: float  # monotonic seconds
    server: str
    pid: int
    rss_kib: int
    fds: int
    cpu_s: float  # user + system time of the process so far


def read(server: str, pid: int) -> ProbeSample | None:
    """One sample, or None if the process is gone (killed between two reads)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # after the command name, which may hold spaces: utime and stime are fields 14 and 15
            fields = stat.read().rpartition(")")[2].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return ProbeSample(time.monotonic(), server, pid, rss, fds, cpu)


class Prober:
    """Samples every ``interval`` seconds the pids ``pids()`` names, until stopped."""

    def __init__(self, pids: Callable[[], dict[str, int]], interval: float) -> None:
        self._pids = pids
        self._interval = interval
        self.samples: list[ProbeSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def _run(self) -> None:
        while True:
            for server, pid in self._pids().items():
                found = read(server, pid)
                if found is not None:
                    self.samples.append(found)
            if self._stop.wait(self._interval):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Series:
    """One process's samples judged from the end of its warm-up: RSS by medians of a few samples at
    each end (one slow moment is not a trend), descriptors by minimums (connections in flight come and
    go; a leak raises the floor)."""

    server: str
    pid: int
    ready_at: float
    warm_end: float
    rss_start_kib: int
    rss_end_kib: int
    rss_max_kib: int
    fds_start: int
    fds_end: int
    fds_max: int
    samples: int
    cpu_share: float  # of one core, from the end of warm-up to the last sample

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_kib - self.rss_start_kib) / self.rss_start_kib

    @property
    def fd_growth(self) -> int:
        return self.fds_end - self.fds_start


EDGE = 5  # samples at each end of a series


def series(
    samples: list[ProbeSample], server: str, pid: int, ready_at: float, warm_end: float
) -> Series | None:
    """The series of one process after ``warm_end``; None if it has too few samples to judge."""
    mine = [sample for sample in samples if sample.pid == pid and sample.at >= warm_end]
    if len(mine) < 2 * EDGE:
        return None
    first, last = mine[:EDGE], mine[-EDGE:]
    return Series(
        server,
        pid,
        ready_at,
        warm_end,
        int(statistics.median(sample.rss_kib for sample in first)),
        int(statistics.median(sample.rss_kib for sample in last)),
        max(sample.rss_kib for sample in mine),
        min(sample.fds for sample in first),
        min(sample.fds for sample in last),
        max(sample.fds for sample in mine),
        len(mine),
        (mine[-1].cpu_s - mine[0].cpu_s) / max(1e-9, mine[-1].at - mine[0].at),
    )
