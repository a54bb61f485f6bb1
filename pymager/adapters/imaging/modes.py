"""Any decoded mode to a working mode that resamples and converts to every output: L, LA, RGB, RGBA,
and CMYK when a CMYK profile will convert it after the resize."""

from __future__ import annotations

from typing import cast

from PIL import Image

WORKING_MODES = frozenset({"L", "LA", "RGB", "RGBA"})


def working_copy(image: Image.Image, keep_cmyk: bool = False) -> Image.Image:
    """The image in L, LA, RGB or RGBA (or still CMYK with ``keep_cmyk``)."""
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" in image.info:
        # A colour key (PNG tRNS) becomes a real alpha channel, which every output format can take.
        return image.convert("LA" if mode == "L" else "RGBA")
    if mode in WORKING_MODES or (keep_cmyk and mode == "CMYK"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        return _to_8bit(image)
    if mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    return image.convert("RGB")  # CMYK (Adobe-inverted CMYK is already un-inverted), YCbCr, LAB…


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer or float greys into 0-255 instead of clipping them."""
    if image.mode != "F":
        image = image.convert("I")
    low, high = cast(tuple[float, float], image.getextrema())  # one band: (min, max)
    if image.mode == "I" and low >= 0 and high <= 65535:
        low, high = 0, (255 if high <= 255 else 65535)
    span = float(high - low) or 1.0
    scaled = image.point(lambda value: (value - low) * (255.0 / span))
    return scaled.convert("L")
