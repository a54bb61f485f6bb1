"""Reduced copies of an original: their sizes, and which one a rendition may be made from.

An original keeps a small pyramid of upright, sRGB copies made at upload (``reduced_copies``: long
sides). A rendition is made from the smallest copy that is *enough*: one whose pixels the rendition
reduces at least twofold in each axis, so every output pixel averages 2×2 or more of the copy's, as it
averages many more of the original's; otherwise from the original. Pure arithmetic on sizes, shared by
the service (which copy) and the image processor (the exact size of each copy it makes).
"""

from __future__ import annotations

from collections.abc import Iterable

from pymager.domain import Mode, Rendition, Size

# How many copy pixels each output pixel must average, per axis, for the copy to be enough.
MIN_REDUCTION = 2.0


def reduced_size(upright: Size, side: int) -> Size:
    """The size of the copy of long side ``side`` of an ``upright`` picture (aspect kept, rounded)."""
    scale = side / max(upright.width, upright.height)
    return Size(max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))


def applicable_sides(upright: Size, sides: Iterable[int]) -> tuple[int, ...]:
    """The sides of the copies worth making of an ``upright`` picture: those smaller than it, largest
    first."""
    longest = max(upright.width, upright.height)
    return tuple(sorted({side for side in sides if side < longest}, reverse=True))


def needed_pixels(rendition: Rendition, upright: Size) -> tuple[float, float]:
    """How many pixels of ``upright`` the rendition's resize takes in, per axis: the cover window for
    fill, the whole picture for fit and pad (scaled to their fitted size)."""
    width, height = upright.width, upright.height
    box = rendition.size
    if rendition.mode is Mode.FILL:
        scale = max(box.width / width, box.height / height)
        return box.width / scale, box.height / scale
    return float(width), float(height)


def output_pixels(rendition: Rendition, upright: Size) -> tuple[int, int]:
    """The size the resize makes (before pad's canvas): the box for fill, the fitted size otherwise
    (as ``geometry.fitted_size``: never enlarged, each side at least 1)."""
    if rendition.mode is Mode.FILL:
        return rendition.size.width, rendition.size.height
    scale = min(rendition.size.width / upright.width, rendition.size.height / upright.height, 1.0)
    return max(1, round(upright.width * scale)), max(1, round(upright.height * scale))


def choose_copy(rendition: Rendition, upright: Size, sides: Iterable[int]) -> int | None:
    """The long side of the smallest copy ``rendition`` may be made from (``None``: the original).
    Deterministic: the same rendition of the same original always chooses the same copy."""
    window = needed_pixels(rendition, upright)
    made = output_pixels(rendition, upright)
    for side in sorted(sides):
        copy = reduced_size(upright, side)
        taken = (window[0] * copy.width / upright.width, window[1] * copy.height / upright.height)
        if taken[0] >= MIN_REDUCTION * made[0] and taken[1] >= MIN_REDUCTION * made[1]:
            return side
    return None
