"""The EXIF orientation: reading it, applying it, and mapping upright coordinates to stored ones.

The pipeline resizes the stored pixels and transposes only the small result, so everything the caller
states in upright terms (the box, the focal point) is mapped to the stored orientation first.
"""

from __future__ import annotations

import logging

from PIL import Image

log = logging.getLogger(__name__)

# EXIF orientation → the transposition that displays the stored pixels upright.
TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})


def orientation(image: Image.Image) -> int:
    """The EXIF orientation; 1 when absent, out of range or unreadable (a broken EXIF block means no
    rotation rather than a failed request)."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # any parser failure on untrusted EXIF
        log.info("ignoring an unreadable EXIF block", exc_info=True)
        return 1
    return value if value in TRANSPOSITIONS else 1


def swaps_axes(orientation: int) -> bool:
    """Whether the upright picture's width is the stored height."""
    return orientation in _SWAPS_AXES


def to_stored_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """An upright width × height in the stored orientation (and back: the swap is its own inverse)."""
    return (size[1], size[0]) if orientation in _SWAPS_AXES else size


def to_stored_point(x: float, y: float, orientation: int) -> tuple[float, float]:
    """Fractions (x, y) of the upright picture from its top-left, as fractions of the stored picture."""
    if orientation == 2:
        return 1.0 - x, y
    if orientation == 3:
        return 1.0 - x, 1.0 - y
    if orientation == 4:
        return x, 1.0 - y
    if orientation == 5:
        return y, x
    if orientation == 6:  # displayed turned a quarter clockwise
        return y, 1.0 - x
    if orientation == 7:
        return 1.0 - y, 1.0 - x
    if orientation == 8:  # displayed turned a quarter anticlockwise
        return 1.0 - y, x
    return x, y


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` transposed as its EXIF orientation says to display it."""
    method = TRANSPOSITIONS.get(orientation)
    return image if method is None else image.transpose(method)
