"""The last steps: pad onto the canvas, convert to what the output format stores, encode.

Derived images carry no metadata and no colour profile: their pixels are sRGB, which is what every
browser assumes of an untagged image.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from PIL import Image

from pymager.domain import ImageFormat

WHITE = 255
# Formats with transparency (GIF's is one palette index), where pad leaves the margins clear.
_ALPHA_FORMATS = frozenset({ImageFormat.PNG, ImageFormat.WEBP, ImageFormat.GIF})
_TRANSPARENT_INDEX = 255


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
    if image_format is ImageFormat.GIF:
        return _palette(image)
    return image


def encode(image: Image.Image, image_format: ImageFormat, quality: int, out: BinaryIO) -> None:
    """Write ``image`` (as ``for_output`` made it) to ``out``, with no metadata and no profile."""
    transparency = image.info.get("transparency")
    image.info.clear()  # resize/convert copy .info (EXIF, XMP, comments, text, ICC): write none of it
    params: dict[str, Any] = {}
    if image_format is ImageFormat.JPEG:
        params.update(quality=quality, optimize=True)
    elif image_format is ImageFormat.PNG:
        params.update(compress_level=6)
    elif image_format is ImageFormat.WEBP:
        params.update(quality=quality)
    elif isinstance(transparency, int):  # the palette index _palette chose, never a colour key
        params.update(transparency=transparency)
    image.save(out, image_format.value, **params)


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
