"""What a page shows before a picture loads, computed once at upload from the small upright copy the
upload check already makes: a ThumbHash (https://evanw.github.io/thumbhash/, by the reference Rust
implementation through thumbhash-rs) and the dominant colour."""

from __future__ import annotations

import base64

import thumbhash
from PIL import Image

from pymager.adapters.imaging import colour, modes
from pymager.domain import Placeholder

# ThumbHash encodes at most 100x100 pixels.
THUMBHASH_SIDE = 100
# The dominant colour: the most frequent of this many median-cut colours of the opaque pixels.
_COLOURS = 8


def placeholder(small: Image.Image, profile: colour.Profile | None) -> Placeholder:
    """The placeholder of ``small`` (upright, any decoded mode, colours as ``profile`` says)."""
    picture = colour.to_srgb(modes.working_copy(small), profile).convert("RGBA")
    picture.thumbnail((THUMBHASH_SIDE, THUMBHASH_SIDE), Image.Resampling.BOX)
    hashed = thumbhash.rgba_to_thumb_hash(picture.width, picture.height, picture.tobytes())
    return Placeholder(base64.b64encode(hashed).decode("ascii"), _dominant(picture))


def _dominant(picture: Image.Image) -> str:
    data = picture.tobytes()  # RGBA, at most 100x100
    pixels = [data[index : index + 4] for index in range(0, len(data), 4)]
    opaque = [tuple(pixel[:3]) for pixel in pixels if pixel[3] >= 128] or [tuple(p[:3]) for p in pixels]
    strip = Image.new("RGB", (len(opaque), 1))
    strip.putdata(opaque)
    quantized = strip.quantize(_COLOURS, method=Image.Quantize.MEDIANCUT)
    counts: list[tuple[int, int]] = quantized.getcolors() or [(1, 0)]  # type: ignore[assignment]
    index = max(counts)[1]
    palette = quantized.getpalette() or [0, 0, 0]
    red, green, blue = palette[index * 3 : index * 3 + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"
