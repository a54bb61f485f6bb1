"""Fill, fit and pad as arithmetic on sizes: what the decoder must cover, the one resize (source box in
stored coordinates, target size) and, for pad, the canvas. No pixels here.

Every mode is one resize of the stored pixels: the resize target is in the stored orientation and the
(cheap) transposition is applied to the small result, so upright boxes and points are mapped first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pymager.adapters.imaging.orientation import to_stored_point, to_stored_size
from pymager.domain import Mode, Rendition

Box = tuple[float, float, float, float]
# Every resize (from an original, to a reduced copy, from one) first reduces by an integer box factor
# to no less than this many times its target, then resamples with Lanczos. At 2 the box does most of
# a large reduction and lets aliasing through: a line-art rendition 24x smaller was 36 dB from the
# exact Lanczos one, and a rendition from a reduced copy (which no such box made) 35 dB from it. At 4
# they are 48 and 39 dB (tests/integration/test_reduced_quality.py); a reduction under 4x, every
# rendition from a copy but thumbnails and most from a JPEG's DCT-scaled decode, has no box either way.
REDUCING_GAP = 4.0


@dataclass(frozen=True)
class Resize:
    """One resize: the ``box`` of the decoded (stored, possibly draft-scaled) pixels to scale to
    ``size`` (stored orientation), and the upright ``canvas`` to centre the result on (pad only)."""

    box: Box
    size: tuple[int, int]
    canvas: tuple[int, int] | None


def fitted_size(rendition: Rendition, upright: tuple[int, int]) -> tuple[int, int]:
    """The upright size of a fit (or of the picture pad centres): the whole ``upright`` picture inside
    the box, aspect kept, never enlarged, each side at least 1."""
    width, height = upright
    box = rendition.size
    scale = min(box.width / width, box.height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decoded_size_needed(rendition: Rendition, stored: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The smallest stored-orientation size the decoder may scale the picture to (JPEG ``draft``) and
    still give the resize enough pixels: the cover size for fill, the fitted size otherwise. Asked for
    exactly that: DCT scaling is itself a good low-pass, and the resize applies its reducing gap after
    (asking for more decodes at a weaker scale for the same output)."""
    width, height = stored
    if rendition.mode is Mode.FILL:
        target = to_stored_size((rendition.size.width, rendition.size.height), orientation)
        scale = max(target[0] / width, target[1] / height)
        return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))
    return to_stored_size(fitted_size(rendition, to_stored_size(stored, orientation)), orientation)


def plan(
    rendition: Rendition, original: tuple[int, int], decoded: tuple[int, int], orientation: int
) -> Resize:
    """The resize that makes ``rendition`` of an ``original`` (stored size, as in its header) whose
    pixels were decoded at ``decoded`` (smaller when the decoder scaled them)."""
    full: Box = (0.0, 0.0, float(decoded[0]), float(decoded[1]))
    if rendition.mode is Mode.FILL:
        target = to_stored_size((rendition.size.width, rendition.size.height), orientation)
        focus = to_stored_point(rendition.focus.x, rendition.focus.y, orientation)
        return Resize(_cover_box(decoded, target, focus), target, None)
    fitted = fitted_size(rendition, to_stored_size(original, orientation))
    canvas = (rendition.size.width, rendition.size.height) if rendition.mode is Mode.PAD else None
    return Resize(full, to_stored_size(fitted, orientation), canvas)


def plan_reduced(rendition: Rendition, upright: tuple[int, int], decoded: tuple[float, float]) -> Resize:
    """The resize that makes ``rendition`` from a reduced copy (upright, so no orientation) of an
    original whose upright size is ``upright``, the copy's pixels decoded at ``decoded``. The crop
    window is the original's, computed on the original's size and scaled to the copy axis by axis, and
    fit and pad make the original's fitted size: the geometry is the original's, not the copy's
    (whose sides are rounded)."""
    if rendition.mode is Mode.FILL:
        target = (rendition.size.width, rendition.size.height)
        left, top, right, bottom = _cover_box(upright, target, (rendition.focus.x, rendition.focus.y))
        x, y = decoded[0] / upright[0], decoded[1] / upright[1]
        return Resize((left * x, top * y, right * x, bottom * y), target, None)
    canvas = (rendition.size.width, rendition.size.height) if rendition.mode is Mode.PAD else None
    full: Box = (0.0, 0.0, float(decoded[0]), float(decoded[1]))
    return Resize(full, fitted_size(rendition, upright), canvas)


def _cover_box(source: tuple[int, int], target: tuple[int, int], focus: tuple[float, float]) -> Box:
    """The largest box of ``target``'s aspect in ``source``, as centred on ``focus`` (fractions of
    ``source``) as ``source`` allows. At the centre it is exactly ``ImageOps.fit``'s centred box: the
    arithmetic below gives the same floats as ``(width - crop) / 2``, so existing crops keep their
    pixels."""
    width, height = source
    if width * target[1] > height * target[0]:  # source is wider: crop the sides
        crop = height * target[0] / target[1]
        left, right = _window(width, crop, focus[0])
        return left, 0.0, right, float(height)
    crop = width * target[1] / target[0]
    top, bottom = _window(height, crop, focus[1])
    return 0.0, top, float(width), bottom


def _window(length: int, crop: float, fraction: float) -> tuple[float, float]:
    half = crop / 2
    centre = min(max(fraction * length, half), length - half)
    return centre - half, centre + half
