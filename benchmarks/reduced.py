"""What reduced copies buy cold requests and cost uploads, each ratio measured in one run.

    python -m benchmarks.reduced [RUNS]     # the figures and ratios as JSON

- Cold 24 MP → 200x200 and → 1024x768 JPEG through the standalone server (copies on, the default),
  distinct keys one after another, interleaved with the in-process best pipeline (its fastest tuning,
  from the original) and, for 200, the 2011 pipeline;
- cold 2 MP PNG with alpha → 200x200 PNG, against the best pipeline from the original to PNG;
- uploads of the 24 MP photo to a server with ``reduced_copy = off`` and to one with copies, alternately.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import corpus, load, scenarios
from benchmarks.inprocess import Worker
from benchmarks.modes import QUICK
from benchmarks.servers import Process, start_pymager
from benchmarks.stats import percentile

_THREADS = 16


def _p50_ms(seconds: list[float]) -> float:
    return round(percentile(seconds, 0.5) * 1000, 1)


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3)


def _uploads(on: Process, off: Process, photo: Path, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"with_copy": [], "without_copy": []}
    for run in range(runs + 1):  # the first round warms up
        for name, server in (("without_copy", off), ("with_copy", on)):
            started = time.perf_counter()
            status = load.upload(server.port, f"up{run}", photo)
            elapsed = time.perf_counter() - started
            if status != 201:
                raise RuntimeError(f"upload to {name} answered {status}")
            if run:
                times[name].append(elapsed)
    return {f"{name}_p50_ms": _p50_ms(values) for name, values in times.items()}


def measure(runs: int, work: Path) -> dict[str, Any]:
    photo, graphic = corpus.ensure(corpus.PHOTO_24MP), corpus.ensure(corpus.GRAPHIC_2MP)
    on = start_pymager(work / "with-copy", _THREADS)
    off = start_pymager(work / "without-copy", _THREADS, ("reduced_copy = off",))
    best = scenarios.tune_best(QUICK, photo)
    old, png = Worker("2011"), Worker("best_png")
    try:
        # Twice the samples for uploads: one 24 MP upload's time moved by a quarter between runs here.
        figures: dict[str, Any] = {"runs": runs, "upload": _uploads(on, off, photo, 2 * runs)}
        scenarios.upload_corpus(on, (corpus.PHOTO_24MP, corpus.GRAPHIC_2MP))
        on.get(f"/derived/{corpus.PHOTO_24MP.name}-100x100.jpg")  # warm the generation path
        for label, size in scenarios.SIZES.items():
            service, inprocess, ancient = [], [], []
            for run in range(runs):
                # Distinct heights, the same work: a 3:2 source's height sets the scale.
                key = f"/derived/{corpus.PHOTO_24MP.name}-{size[0]}x{size[1] + 1 + run}.jpg"
                service.append(load.timed_get(on.port, key))
                inprocess.append(best[label].run(photo, size))
                if label == "200":
                    ancient.append(old.run(photo, size))
            figures[f"cold_{label}"] = {
                "service_p50_ms": _p50_ms(service),
                "inprocess_best_p50_ms": _p50_ms(inprocess),
                **({"inprocess_2011_p50_ms": _p50_ms(ancient)} if ancient else {}),
            }
        service, inprocess = [], []
        png.run(graphic, (200, 200))
        for run in range(runs):
            service.append(load.timed_get(on.port, f"/derived/{corpus.GRAPHIC_2MP.name}-200x{201 + run}.png"))
            inprocess.append(png.run(graphic, (200, 200)))
        figures["cold_png_alpha_200"] = {
            "service_p50_ms": _p50_ms(service),
            "inprocess_best_p50_ms": _p50_ms(inprocess),
        }
    finally:
        on.stop()
        off.stop()
        for worker in {*best.values(), old, png}:
            worker.close()
    return figures


def ratios(figures: dict[str, Any]) -> dict[str, float | None]:
    """The reduced-copy rows of ``report.TARGETS`` from ``measure``'s figures."""
    if not figures:
        return {}
    cold200, cold1024, png = figures["cold_200"], figures["cold_1024"], figures["cold_png_alpha_200"]
    upload = figures["upload"]
    return {
        "cold_200_service_over_inprocess_best": _ratio(
            cold200["service_p50_ms"], cold200["inprocess_best_p50_ms"]
        ),
        "cold_1024_service_over_inprocess_best": _ratio(
            cold1024["service_p50_ms"], cold1024["inprocess_best_p50_ms"]
        ),
        "cold_200_speedup_over_2011": _ratio(cold200["inprocess_2011_p50_ms"], cold200["service_p50_ms"]),
        "cold_png_alpha_200_service_over_inprocess_best": _ratio(
            png["service_p50_ms"], png["inprocess_best_p50_ms"]
        ),
        "upload_24mp_with_copy_over_without": _ratio(
            upload["with_copy_p50_ms"], upload["without_copy_p50_ms"]
        ),
    }


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 7
    with tempfile.TemporaryDirectory(prefix="pymager-reduced-") as directory:
        figures = measure(runs, Path(directory))
    print(json.dumps({"ratios": ratios(figures), "figures": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
