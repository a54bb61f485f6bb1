"""What the results were measured on, and how steady the machine was while they were taken: the load
average, the CPU time the hypervisor stole, and a fixed CPU-bound probe timed before and after (on a
shared virtual machine the same code can run a third slower from one run to the next, or within one)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from PIL import features


def loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


PROBE_RUNS = 9


def cpu_times() -> list[int]:
    """The machine's cumulative CPU times in ticks (/proc/stat: user … steal), or [] elsewhere."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return []
    return [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:9]]


def steal_percent(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time between two ``cpu_times`` readings that the hypervisor gave elsewhere."""
    if len(before) < 8 or len(after) < 8:
        return None
    spent = [later - earlier for earlier, later in zip(before, after, strict=True)]
    total = sum(spent)
    return round(100 * spent[7] / total, 1) if total else 0.0


def cpu_probe() -> dict[str, float]:
    """A fixed pure-Python loop timed ``PROBE_RUNS`` times (ms): its median says how fast the CPU ran
    then, its spread how steadily; compare runs by it before comparing their figures."""
    times = []
    for _ in range(PROBE_RUNS):
        started = time.perf_counter()
        total = 0
        for value in range(1_000_000):
            total += value
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def describe(mode: str) -> dict[str, Any]:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "mode": mode,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pillow": version("pillow"),
        "libjpeg": features.version("jpg"),
        "cherrypy": version("cherrypy"),
        "cheroot": version("cheroot"),
        "wrk": (wrk.stdout or wrk.stderr).split(" [")[0].strip() or "wrk",
        "loadavg_before": loadavg(),
        "cpu_probe_before": cpu_probe(),
    }
