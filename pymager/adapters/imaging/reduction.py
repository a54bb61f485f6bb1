"""Reduced copies of an original, made at upload from the picture the upload check decodes anyway.

Each copy is exactly ``reduced_size`` (``pymager.reduced``) of the upright original, made like a
derivation's first steps: one resize of the decoded (stored, possibly DCT-scaled) pixels, then the EXIF
orientation, then the embedded profile to sRGB. So a derivation from a copy needs no orientation and
no colour step, and its geometry is the original's. A JPEG original's copies are box-averaged first as
far as whole factors go: its DCT-scaled decode, what a derivation from the original starts from, is
such an average (the 800 px copy of a 6000x4000 photo: 3x3 boxes of its 1/2-scale decode, then
bilinear by 1.25; 11 ms against 72 for Lanczos alone). Encoded without metadata in what decodes
fastest at the quality the derivations need (measured: tests/integration/test_reduced_quality.py,
benchmarks/README.md):

- of a lossy original (JPEG, WebP, AVIF, HEIF), opaque: JPEG at ``JPEG_QUALITY``; a *large* copy
  (``LARGE_SIDE`` or more: the 3000 px one) with 4:2:0 chroma, and decoded for a rendition at the DCT
  scale that still leaves ``DRAFT_GAP`` of its pixels per output pixel (``draft``): 24 MP → 1024x768
  from the 3000 px copy then takes 44 ms in-process instead of 123, its renditions 42 dB or more from
  the original's. A small copy keeps 4:4:4 and is decoded whole: it holds the most detail per pixel
  (4:2:0 cost it 35 dB, DCT scaling 33);
- of a lossless original (PNG, GIF), or with alpha: a small copy uncompressed TIFF (decoded in 1 ms
  where its PNG took 15: the 800x450 RGBA copy is 1.44 MB against 0.85 MB), a large one PNG at
  ``PNG_COMPRESSION`` (uncompressed, the 3000 px copy of a screenshot would be 18 MB). Line art and text,
  what such originals mostly hold, lose 1.5 dB to a q90 JPEG copy (37.4 dB against 38.9) and alpha
  edges keep every level.

Copies stored by an earlier pymager (JPEG 4:4:4 of every size, PNG) are read as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import BinaryIO

from PIL import Image, ImageFile

from pymager.adapters.imaging import colour, modes, orientation
from pymager.adapters.imaging.geometry import REDUCING_GAP
from pymager.domain import Rendition, Size
from pymager.reduced import needed_pixels, output_pixels, reduced_size

JPEG_QUALITY = 90
JPEG_SUBSAMPLING = "4:4:4"  # small copies
LARGE_JPEG_SUBSAMPLING = "4:2:0"
PNG_COMPRESSION = 1
# A copy whose long side is at least this is large: stored compactly (4:2:0, PNG) and read DCT-scaled.
# The copies that serve renditions of some 400 px and more (the 3000 px one; 1200 in the quality
# guard) are large, those of thumbnails (800; 320 there) small.
LARGE_SIDE = 1000
# What reduced copies are stored as (Pillow's names). Only copies, never uploads, open with these.
COPY_FORMATS = ("JPEG", "TIFF", "PNG")
# The most pixels the upload check decodes a JPEG at for its copies: a 6000x4000 photo's 3000 px copy
# needs 3000x2000 (a 1/2 DCT scale, 24 MB as Pillow holds RGB). A copy needing more is not made, and
# the check decodes at the scale the others need: a 7200x5000 original gets no 3000 px copy (its 1/2
# scale is 9 MP, 36 MB and the copy 25 MB more, measured 22 MB of server RSS growth against 4.9 at
# the 1/8 scale), and its renditions between 800 and 1500 px are made from it as before copies.
MAX_DECODED_PIXELS = 6_250_000
# How a JPEG original's copies are made from its decode: box averages all the way (reducing gap 1),
# then the rest, under 2:1, bilinear. The 800 px copy of a 6000x4000 photo: 10.8 ms against 20.1 with
# Lanczos for the rest and 72 with Lanczos alone; renditions from it 45.5 dB or more from the
# original's (46.9 with Lanczos for the rest, 46.3 with Lanczos alone).
MAKE_GAP = 1.0
MAKE_FILTER = Image.Resampling.BILINEAR
# How many of a large JPEG copy's pixels (per axis) the DCT-scaled decode leaves each output pixel at
# least: 1/2 scale for 1024x768 from the 3000 px copy of a 3:2 photo (2.6 to 1).
DRAFT_GAP = 1.25
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
    jpeg: bool = False,
    last_frame: bool = False,
) -> list[tuple[int, Image.Image]]:
    """The copies of ``sides`` of the decoded ``frame`` (stored orientation) of an original of
    ``upright`` size, each a new picture (the frame may be the decoder's next one soon) unless
    ``last_frame``: then a copy of the frame's size may be the frame itself. Of a ``jpeg``
    original, box-averaged as far as whole factors go (``MAKE_GAP``, ``MAKE_FILTER``), as its
    DCT-scaled decode is: the pixels a derivation from the original starts from."""
    gap, resample = (MAKE_GAP, MAKE_FILTER) if jpeg else (REDUCING_GAP, Image.Resampling.LANCZOS)
    keep_cmyk = colour.converts_cmyk(frame, profile)
    picture = modes.working_copy(frame, keep_cmyk=keep_cmyk)
    copies = []
    for side in sides:
        size = reduced_size(upright, side)
        stored = orientation.to_stored_size((size.width, size.height), exif_orientation)
        if picture.size == stored:
            resized = picture if last_frame else picture.copy()
        else:
            resized = picture.resize(stored, resample, reducing_gap=gap)
        shown = colour.to_srgb(orientation.upright(resized, exif_orientation), profile)
        copies.append((side, shown))
    return copies


def draft(image: ImageFile.ImageFile, rendition: Rendition, upright: Size) -> tuple[float, float]:
    """Ask the decoder of the opened copy ``image`` to scale a large JPEG copy in the DCT domain (by
    1/2, 1/4, 1/8) as far as the rendition keeps ``DRAFT_GAP`` of its pixels per output pixel in each
    axis; return the copy's extent in the pixels it will be decoded at (libjpeg rounds scaled sides
    up: the last column and row may be partly outside the copy). Small copies are decoded whole."""
    extent = (float(image.width), float(image.height))
    if image.format != "JPEG" or max(image.size) < LARGE_SIDE:
        return extent
    window = needed_pixels(rendition, upright)
    made = output_pixels(rendition, upright)
    taken = min(
        window[0] * image.width / upright.width / made[0], window[1] * image.height / upright.height / made[1]
    )
    factor = taken / DRAFT_GAP
    if factor < 2:
        return extent
    requested = (math.ceil(image.width / factor), math.ceil(image.height / factor))
    drafted = image.draft(None, requested)
    if drafted is None:
        return extent
    box = drafted[1]
    return box[2] - box[0], box[3] - box[1]


def encode(picture: Image.Image, out: BinaryIO, lossless: bool) -> None:
    """Write a copy (L, LA, RGB or RGBA, sRGB) to ``out`` without metadata or profile; ``lossless``:
    the original was (a lossless copy is written even when opaque)."""
    picture.info.clear()  # resize and convert keep .info (EXIF, ICC …): none of it is written
    large = max(picture.size) >= LARGE_SIDE
    if lossless or picture.mode in ("LA", "RGBA"):
        if large:
            picture.save(out, "PNG", compress_level=PNG_COMPRESSION)
        else:
            picture.save(out, "TIFF")  # uncompressed
    else:
        subsampling = LARGE_JPEG_SUBSAMPLING if large else JPEG_SUBSAMPLING
        picture.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=subsampling)
