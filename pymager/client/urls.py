"""Derived image paths, built and checked against the server's own grammar (``pymager.domain``), so that
the client never builds a URL the server would answer with a 404 for its shape."""

from __future__ import annotations

from pymager.domain import parse_derived
from pymager.errors import PymagerError

MODES = ("fit", "pad")  # fill is the mode a URL names by naming none


def derived_path(image_id: str, width: int, height: int, fmt: str, mode: str | None = None) -> str:
    """``/derived/<id>-<W>x<H>[-<mode>].<fmt>``; ``ValueError`` (saying why) for what the server's grammar
    refuses: an id outside ``[A-Za-z0-9_-]{1,128}``, a side that is not an integer from 0, a 0 side
    outside fit, ``0x0``, a mode other than fit or pad (``fill`` or ``None``: fill), an unknown format."""
    for name, side in (("width", width), ("height", height)):
        if isinstance(side, bool) or not isinstance(side, int) or side < 0:
            raise ValueError(f"{name} is an integer from 0, got {side!r}")
    suffix = ""
    if mode not in (None, "fill"):
        if mode not in MODES:
            raise ValueError(f"mode is fit, pad or fill (None), got {mode!r}")
        suffix = f"-{mode}"
    segment = f"{image_id}-{width}x{height}{suffix}.{fmt}"
    try:
        spec = parse_derived(segment)
    except PymagerError as exc:
        raise ValueError(f"{segment!r}: {exc.detail}") from None
    # The right-to-left grammar could read a strange id as a size: only the parse we meant counts.
    if spec.image_id != image_id:
        raise ValueError(f"{image_id!r} is not an image id ([A-Za-z0-9_-]{{1,128}})")
    return f"/derived/{segment}"
