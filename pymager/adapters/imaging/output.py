"""The last steps: pad onto the canvas, convert to what the output format stores, encode.

Derived images carry no metadata and no colour profile: their pixels are sRGB, which is what every
browser assumes of an untagged image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from PIL import Image

from pymager.domain import ImageFormat

WHITE = 255
# Formats with transparency (GIF's is one palette index), where pad leaves the margins clear.
_ALPHA_FORMATS = frozenset({ImageFormat.PNG, ImageFormat.WEBP, ImageFormat.GIF, ImageFormat.AVIF})
_TRANSPARENT_INDEX = 255
# One encoder thread per AVIF: the server already runs one generation per core at once
# (max_concurrent_generations), so more threads per encode only contend for the same cores, and a
# busy server would see each generation's time vary with its neighbours' (benchmarks/README.md).
AVIF_THREADS = 1


@dataclass(frozen=True)
class Encoding:
    """How hard each lossy encoder works: the ``*_quality`` settings (1-100) and ``avif_speed`` (aom's
    speed, 0 slowest and smallest to 10 fastest); each default measured by ``benchmarks/formats.py``."""

    jpeg_quality: int = 85
    webp_quality: int = 85
    avif_quality: int = 60
    avif_speed: int = 8


@dataclass(frozen=True)
class Animation:
    """What an animated result keeps of its original: each frame's duration (ms, read as the encoder
    reaches the frame), the loop count (0: forever; None: the original plays once) and whether the
    frames have transparency (a GIF then clears each frame before the next)."""

    durations: Sequence[int]
    loop: int | None
    alpha: bool


def pad(
    image: Image.Image,
    canvas: tuple[int, int] | None,
    image_format: ImageFormat,
    colour: tuple[int, int, int],
) -> Image.Image:
    """``image`` (a working mode, sRGB) centred on ``canvas``: transparent margins where the format has
    alpha, else ``colour`` (the picture's own transparency is flattened on white first, as without
    pad)."""
    if canvas is None or image.size == canvas:
        return image
    offset = ((canvas[0] - image.width) // 2, (canvas[1] - image.height) // 2)
    grey = image.mode in ("L", "LA")
    if image_format in _ALPHA_FORMATS:
        mode = "LA" if grey else "RGBA"
        background = Image.new(mode, canvas, (0,) * len(mode))
    else:
        if image.mode in ("LA", "RGBA"):
            image = _flatten(image)
        mode = "L" if grey and colour[0] == colour[1] == colour[2] else "RGB"
        background = Image.new(mode, canvas, colour[0] if mode == "L" else colour)
    background.paste(image.convert(mode), offset)
    return background


def for_output(image: Image.Image, image_format: ImageFormat) -> Image.Image:
    """Convert a working-mode image (L, LA, RGB, RGBA) to what ``image_format`` can store."""
    has_alpha = image.mode in ("LA", "RGBA")
    if image_format is ImageFormat.JPEG:
        return _flatten(image) if has_alpha else image
    if image_format is ImageFormat.WEBP:
        return image.convert("RGBA" if has_alpha else "RGB") if image.mode in ("L", "LA") else image
    if image_format is ImageFormat.AVIF:  # grey stays grey (one plane); grey with alpha needs RGBA
        return image.convert("RGBA") if image.mode == "LA" else image
    if image_format is ImageFormat.GIF:
        return _palette(image)
    return image


def encode(
    image: Image.Image,
    image_format: ImageFormat,
    encoding: Encoding,
    out: BinaryIO,
    frames: Image.Image | None = None,
    animation: Animation | None = None,
) -> None:
    """Write ``image`` (as ``for_output`` made it) to ``out``, with no metadata and no profile; with
    ``frames`` (the frames after it, produced as the encoder asks) and ``animation``, as an animation."""
    transparency = image.info.get("transparency")
    image.info.clear()  # resize/convert copy .info (EXIF, XMP, comments, text, ICC): write none of it
    params: dict[str, Any] = {}
    if image_format is ImageFormat.JPEG:
        params.update(quality=encoding.jpeg_quality, optimize=True)
    elif image_format is ImageFormat.PNG:
        params.update(compress_level=6)
    elif image_format is ImageFormat.WEBP:
        params.update(quality=encoding.webp_quality)
    elif image_format is ImageFormat.AVIF:
        params.update(quality=encoding.avif_quality, speed=encoding.avif_speed, max_threads=AVIF_THREADS)
    elif isinstance(transparency, int):  # the palette index _palette chose, never a colour key
        params.update(transparency=transparency)
    if frames is not None and animation is not None:
        params.update(_animation_params(image_format, frames, animation))
    image.save(out, image_format.value, **params)


def _animation_params(image_format: ImageFormat, frames: Image.Image, animation: Animation) -> dict[str, Any]:
    """The savers' options for an animation: Pillow's GIF, WebP and AVIF savers each iterate
    ``append_images`` frame by frame and read ``duration[index]`` once they have that frame."""
    params: dict[str, Any] = {"save_all": True, "append_images": [frames], "duration": animation.durations}
    if image_format is ImageFormat.GIF:
        if animation.alpha:
            params["disposal"] = 2  # clear to transparent: a frame's clear pixels must not show the last
        if animation.loop is not None:
            params["loop"] = animation.loop
    elif image_format is ImageFormat.WEBP:
        params["loop"] = 1 if animation.loop is None else animation.loop
    # AVIF: Pillow's saver takes no loop count; libavif writes the sequence as repeating forever.
    return params


def _flatten(image: Image.Image) -> Image.Image:
    """Composite an image with alpha onto white."""
    base_mode = image.mode[:-1]
    background = Image.new(base_mode, image.size, (WHITE,) * len(base_mode))
    background.paste(image.convert(base_mode), mask=image.getchannel("A"))
    return background


def _palette(image: Image.Image) -> Image.Image:
    """A GIF-ready palette image; pixels under half opacity become the transparent index."""
    if image.mode == "L":
        return image
    opaque = image.convert("RGB").quantize(colors=255 if "A" in image.getbands() else 256)
    if "A" in image.getbands():
        clear = image.getchannel("A").point(lambda alpha: 255 if alpha < 128 else 0)
        opaque.paste(_TRANSPARENT_INDEX, mask=clear)
        opaque.info["transparency"] = _TRANSPARENT_INDEX
    return opaque
