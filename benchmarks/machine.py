"""What the results were measured on, including the load average (other work makes numbers noisy)."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from PIL import features


def loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


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
    }
