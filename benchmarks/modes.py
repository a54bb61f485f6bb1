"""How much each scenario runs: the full benchmark and the quick mode (same code paths, fewer runs)."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks import corpus


@dataclass(frozen=True)
class Mode:
    name: str
    corpus: tuple[corpus.Sample, ...]
    tune_runs: int  # runs of each best-pipeline variant before choosing the fastest
    cold_runs: int  # cold keys per size at concurrency 1 (and best-pipeline runs, interleaved)
    runs_2011: int
    other_cold_runs: int  # cold keys per other corpus image
    c4_requests: int
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
    c4_requests=40,
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
    hit_seconds=2,
    hit_rounds=1,
    burst_runs=3,
    flood_requests=40,
    pipeline_runs=3,
)
