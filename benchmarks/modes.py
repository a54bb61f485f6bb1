"""How much each scenario runs: the full benchmark and the quick mode (same code paths, fewer runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from benchmarks import corpus


@dataclass(frozen=True)
class Mode:
    name: str
    corpus: tuple[corpus.Sample, ...]
    tune_runs: int  # runs of each best-pipeline variant before choosing the fastest
    cold_runs: int  # cold keys per size at concurrency 1 (and best-pipeline runs, interleaved)
    runs_2011: int
    other_cold_runs: int  # cold keys per other corpus image
    c4_requests: int  # cold keys per round at c=4 (half as many at c=1)
    c4_rounds: int  # rounds of c=1 then c=4
    hit_seconds: float  # wrk duration per server and concurrency, split into rounds
    hit_rounds: int  # servers alternate round by round, so background load falls on each alike
    hit_connections: tuple[int, ...] = (1, 8, 64)
    burst_requests: int = 100
    burst_runs: int = 5  # bursts per size, each on a fresh cold key, and as many single cold requests
    rss_cold_requests: int = 8
    flood_requests: int = 100  # distinct cold 24 MP keys asked at once while hits are timed
    slow_connections: int = 200  # slowloris connections held open against the shipped Apache site
    slow_requests: int = 20  # normal requests timed meanwhile
    pipeline_runs: int = 9  # interleaved rounds of each in-process pipeline comparison
    thread_pool: int = 16
    # [server] processes of the several-process standalone server: one per core, at least 2.
    processes: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    nginx_connections: tuple[int, ...] = (8, 64)  # wrk against the shipped nginx site and static nginx

    @property
    def results_stem(self) -> str:
        return "latest" if self.name == "full" else "quick"


FULL = Mode(
    "full",
    corpus.FULL,
    tune_runs=5,
    cold_runs=25,
    runs_2011=7,
    other_cold_runs=5,
    c4_requests=24,
    c4_rounds=3,
    hit_seconds=10,
    hit_rounds=2,
)
QUICK = Mode(
    "quick",
    corpus.QUICK,
    tune_runs=2,
    cold_runs=6,
    runs_2011=2,
    other_cold_runs=2,
    c4_requests=12,
    c4_rounds=2,
    hit_seconds=2,
    hit_rounds=1,
    burst_runs=3,
    flood_requests=40,
    pipeline_runs=3,
)
