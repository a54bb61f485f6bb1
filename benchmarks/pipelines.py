"""The in-process baselines, in plain Pillow (not pymager's adapter), decode → cover-crop → JPEG.

- ``pipeline_2011``: what an image server did in 2011: ``Image.open``, a full decode (``load``), then
  ``ImageOps.fit`` with LANCZOS as it was then: a copy of the full-resolution crop, resized.
- ``pipeline_best``: the lower bound: the JPEG decoder scales by 1/2, 1/4 or 1/8 in the DCT domain
  (``draft``) to no less than ``draft_gap`` × the covering size, then one LANCZOS ``resize`` with the
  crop as its ``box`` and ``reducing_gap`` (an integer box ``reduce`` first, when it helps).

Both encode like pymager (quality 85, optimised Huffman tables) into memory, so the work compared is
the same transformation; pymager also hashes, fsyncs and records its output, which is its overhead.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

JPEG_QUALITY = 85

Pipeline = Callable[[Path, tuple[int, int]], bytes]


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def pipeline_2011(path: Path, size: tuple[int, int]) -> bytes:
    """Full decode, then ``ImageOps.fit`` as PIL 1.1.7 wrote it: ``crop`` (a copy of the covered area),
    then ``resize`` of that copy with LANCZOS (today's ``fit`` passes the crop to ``resize`` as ``box``)."""
    with Image.open(path) as image:
        image.load()
        left, top, right, bottom = _centred_box(image.size, size)
        crop = image.crop((round(left), round(top), round(right), round(bottom)))
        result = crop.resize(size, Image.Resampling.LANCZOS)
    return _encode(result.convert("RGB"))


def _centred_box(source: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, float, float]:
    width, height = source
    if width * target[1] > height * target[0]:
        crop = height * target[0] / target[1]
        return (width - crop) / 2, 0.0, (width + crop) / 2, float(height)
    crop = width * target[1] / target[0]
    return 0.0, (height - crop) / 2, float(width), (height + crop) / 2


@dataclass(frozen=True)
class BestVariant:
    """One tuning of the draft + resize pipeline; the benchmark keeps the fastest."""

    draft_gap: float
    reducing_gap: float | None

    @property
    def name(self) -> str:
        return f"draft_gap={self.draft_gap:g}, reducing_gap={self.reducing_gap}"

    def __call__(self, path: Path, size: tuple[int, int]) -> bytes:
        with Image.open(path) as image:
            if image.format == "JPEG":
                scale = max(size[0] / image.width, size[1] / image.height) * self.draft_gap
                image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
            image.load()
            box = _centred_box(image.size, size)
            result = image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=self.reducing_gap)
        return _encode(result.convert("RGB"))


BEST_VARIANTS = (
    BestVariant(1.0, 2.0),
    BestVariant(1.0, 3.0),
    BestVariant(2.0, 2.0),
    BestVariant(2.0, 3.0),
)


def best_png(path: Path, size: tuple[int, int]) -> bytes:
    """The best pipeline for a PNG with alpha to a PNG (no draft for PNG; pymager's compression)."""
    with Image.open(path) as image:
        image.load()
        box = _centred_box(image.size, size)
        result = image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=2.0)
    out = io.BytesIO()
    result.save(out, "PNG", compress_level=6)
    return out.getvalue()


def draft_decode_only(path: Path, size: tuple[int, int]) -> bytes:
    """The JPEG draft decode alone (draft_gap 1), for reference: no resize, no encode."""
    with Image.open(path) as image:
        scale = max(size[0] / image.width, size[1] / image.height)
        image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
        image.load()
    return b""


PIPELINES: dict[str, Pipeline] = {
    "2011": pipeline_2011,
    "draft_decode": draft_decode_only,
    "best_png": best_png,
    **{f"best[{index}]": variant for index, variant in enumerate(BEST_VARIANTS)},
}
