"""Reduced copies of an original, made at upload from the picture the upload check decodes anyway.

Each copy is exactly ``reduced_size`` (``pymager.reduced``) of the upright original, made like a
derivation's first steps: one resize of the decoded (stored, possibly DCT-scaled) pixels, then the EXIF
orientation, then the embedded profile to sRGB. So a derivation from a copy needs no orientation and
no colour step, and its geometry is the original's. Encoded without metadata in what decodes fastest
at the quality the derivations need (measured: tests/integration/test_reduced_quality.py):

- of a lossy original (JPEG, WebP, AVIF, HEIF), opaque: JPEG at ``JPEG_QUALITY`` with 4:4:4 chroma;
  a rendition from it is 43 dB or more from the original's (lossless, 50): the original's own
  compression is of the same order;
- of a lossless original (PNG, GIF), or with alpha: PNG at ``PNG_COMPRESSION``. Line art and text,
  what such originals mostly hold, lose 1.5 dB to a q90 JPEG copy (37.4 dB against 38.9) and alpha
  edges keep every level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import BinaryIO

from PIL import Image

from pymager.adapters.imaging import colour, modes, orientation
from pymager.adapters.imaging.geometry import REDUCING_GAP
from pymager.domain import Size
from pymager.reduced import reduced_size

JPEG_QUALITY = 90
JPEG_SUBSAMPLING = "4:4:4"
PNG_COMPRESSION = 1
# The most pixels the upload check decodes a JPEG at for its copies: a 6000x4000 photo's 3000 px copy
# needs 3000x2000 (a 1/2 DCT scale, 24 MB as Pillow holds RGB). A copy needing more is not made, and
# the check decodes at the scale the others need: a 7200x5000 original gets no 3000 px copy (its 1/2
# scale is 9 MP, 36 MB and the copy 25 MB more, measured 22 MB of server RSS growth against 4.9 at
# the 1/8 scale), and its renditions between 800 and 1500 px are made from it as before copies.
MAX_DECODED_PIXELS = 6_250_000
# The DCT scales libjpeg decodes at (Pillow's draft), largest first.
_DCT_SCALES = (8, 4, 2, 1)


def affordable_sides(stored: tuple[int, int], sides: Sequence[int], jpeg: bool) -> tuple[int, ...]:
    """The ``sides`` (largest first) whose copies the check may make: for a JPEG, those it need not
    decode more than ``MAX_DECODED_PIXELS`` for. Other formats are decoded whole in any case."""
    if not jpeg:
        return tuple(sides)
    return tuple(side for side in sides if _decoded_pixels(stored, side) <= MAX_DECODED_PIXELS)


def _decoded_pixels(stored: tuple[int, int], side: int) -> int:
    """The pixels of the JPEG decode that gives the copy of ``side``: at the largest DCT scale still
    that large (as Pillow's ``draft`` picks it; libjpeg rounds the scaled sides up)."""
    needed = reduced_size(Size(*stored), side)
    fits = min(stored[0] // needed.width, stored[1] // needed.height)
    scale = next(scale for scale in _DCT_SCALES if scale <= max(1, fits))
    return math.ceil(stored[0] / scale) * math.ceil(stored[1] / scale)


def draft_size(stored: tuple[int, int], sides: Sequence[int]) -> tuple[int, int] | None:
    """The size a JPEG must at least be decoded at to give the largest of ``sides`` (``None``: no
    copy). The long side does not depend on the orientation, so the stored size gives the same copy
    size as the upright one, transposed."""
    if not sides:
        return None
    largest = reduced_size(Size(*stored), max(sides))
    return largest.width, largest.height


def make(
    frame: Image.Image,
    upright: Size,
    exif_orientation: int,
    profile: colour.Profile | None,
    sides: Sequence[int],
) -> list[tuple[int, Image.Image]]:
    """The copies of ``sides`` of the decoded ``frame`` (stored orientation) of an original of
    ``upright`` size, each a new picture (the frame may be the decoder's next one soon)."""
    keep_cmyk = colour.converts_cmyk(frame, profile)
    picture = modes.working_copy(frame, keep_cmyk=keep_cmyk)
    copies = []
    for side in sides:
        size = reduced_size(upright, side)
        stored = orientation.to_stored_size((size.width, size.height), exif_orientation)
        if picture.size == stored:
            resized = picture.copy()
        else:
            resized = picture.resize(stored, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        shown = colour.to_srgb(orientation.upright(resized, exif_orientation), profile)
        copies.append((side, shown))
    return copies


def encode(picture: Image.Image, out: BinaryIO, lossless: bool) -> None:
    """Write a copy (L, LA, RGB or RGBA, sRGB) to ``out`` without metadata or profile; ``lossless``:
    the original was (PNG is written even when opaque)."""
    picture.info.clear()  # resize and convert keep .info (EXIF, ICC …): none of it is written
    if lossless or picture.mode in ("LA", "RGBA"):
        picture.save(out, "PNG", compress_level=PNG_COMPRESSION)
    else:
        picture.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
