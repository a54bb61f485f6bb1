"""What the modes, colour management and focus detection cost pymager's own pipeline, in-process.

The contenders of each comparison run interleaved, one run each in turn, on the same 24 MP corpus
photo, so noise from the rest of the machine falls on all of them alike; the figures are medians.

- fill, fit and pad at 200x200 and 1024x768 (``PillowProcessor.derive``);
- the photo tagged with an Adobe RGB (1998) profile against the same photo untagged (fill, both sizes);
- the upload check (``PillowProcessor.identify``) with focus detection on and off.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks import corpus
from pymager.adapters.pillow import PillowProcessor
from pymager.domain import ImageFormat, Mode, Rendition, Size
from tests.images import ADOBE_RGB, rgb_profile

SIZES = {"200": Size(200, 200), "1024": Size(1024, 768)}


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def _interleaved(contenders: dict[str, Callable[[], None]], runs: int) -> dict[str, float]:
    """Median ms of each contender over ``runs`` rounds, each round running every contender once."""
    for run in contenders.values():
        run()  # warm-up: page cache, imports, transforms built
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: _median_ms(samples) for name, samples in times.items()}


def _tagged_copy(photo: Path) -> Path:
    """The photo re-encoded with an Adobe RGB (1998) profile, cached beside the corpus."""
    path = photo.with_name(f"{photo.stem}-adobergb.jpg")
    if not path.exists():
        with Image.open(photo) as image:
            image.save(path, "JPEG", quality=93, icc_profile=rgb_profile(ADOBE_RGB))
    return path


def _derive(processor: PillowProcessor, path: Path, rendition: Rendition) -> Callable[[], None]:
    def run() -> None:
        with path.open("rb") as source:
            processor.derive(source, rendition, io.BytesIO())

    return run


def _identify(processor: PillowProcessor, path: Path) -> Callable[[], None]:
    def run() -> None:
        with path.open("rb") as source:
            processor.identify(source)

    return run


def measure(runs: int) -> dict[str, Any]:
    photo = corpus.ensure(corpus.PHOTO_24MP)
    processor = PillowProcessor()
    figures: dict[str, Any] = {"runs": runs}
    for label, size in SIZES.items():
        figures[f"modes_{label}_ms"] = _interleaved(
            {mode.value: _derive(processor, photo, Rendition(size, mode, ImageFormat.JPEG)) for mode in Mode},
            runs,
        )
    tagged = _tagged_copy(photo)
    for label, size in SIZES.items():
        fill = Rendition(size, Mode.FILL, ImageFormat.JPEG)
        figures[f"colour_{label}_ms"] = _interleaved(
            {"untagged": _derive(processor, photo, fill), "adobe_rgb": _derive(processor, tagged, fill)},
            runs,
        )
    figures["upload_check_ms"] = _interleaved(
        {
            "without_focus": _identify(PillowProcessor(detect_focus=False), photo),
            "with_focus": _identify(processor, photo),
        },
        runs,
    )
    return figures
