"""The pictures the soak uploads: several formats and sizes (some animated, some with alpha, some a
few MB), each version of an id dominated by one colour of a small palette, so that a derived image
tells which version it was made from, and each upload made unique by a tag in its metadata, so that
its SHA-256 names exactly one upload. Bases are encoded once per template and colour; a version's
bytes are its base with its tag put in (cheap, and rebuildable for range checks)."""

from __future__ import annotations

import functools
import io
import struct
import threading
import zlib
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageStat

RGB = tuple[int, int, int]

# Well apart in RGB (the closest pair is about 130 apart), so JPEG, AVIF and GIF quantisation of a
# noisy field still land nearest their own colour.
PALETTE: tuple[RGB, ...] = (
    (200, 40, 40),
    (40, 170, 60),
    (50, 70, 200),
    (220, 200, 40),
    (170, 60, 190),
    (40, 180, 190),
)
# A sampled colour farther than this from every palette entry is no version's.
RECOGNISED_DISTANCE = 60.0
TAG_BYTES = 48
_XMP_PLACEHOLDER = b"pymager-soak-xmp-placeholder-".ljust(TAG_BYTES, b"~")


@dataclass(frozen=True)
class Template:
    name: str
    format: str  # Pillow's name
    size: tuple[int, int]
    frames: int = 1
    alpha: bool = False
    content_type: str = "image/jpeg"


TEMPLATES: tuple[Template, ...] = (
    Template("jpeg-large", "JPEG", (2400, 1600)),  # about 2.5 MB
    Template("jpeg-small", "JPEG", (640, 480)),
    Template("png-alpha", "PNG", (1000, 700), alpha=True, content_type="image/png"),  # about 2 MB
    Template("png-small", "PNG", (320, 240), content_type="image/png"),
    Template("gif-animated", "GIF", (160, 120), frames=6, content_type="image/gif"),
    Template("gif-still", "GIF", (240, 180), content_type="image/gif"),
    Template("webp-still", "WEBP", (1000, 750), content_type="image/webp"),
    Template("webp-animated", "WEBP", (200, 150), frames=5, content_type="image/webp"),
)
TEMPLATES_BY_NAME = {template.name: template for template in TEMPLATES}


class PictureFactory:
    """Encoded bases per (template, colour), made on first use and kept (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bases: dict[tuple[str, int], bytes] = {}

    def base(self, template: Template, colour: int) -> bytes:
        key = (template.name, colour)
        with self._lock:
            cached = self._bases.get(key)
            if cached is None:
                cached = self._bases[key] = _encode(template, PALETTE[colour])
            return cached

    def version_bytes(self, template: Template, colour: int, tag: bytes) -> bytes:
        """The upload of one version: the base with ``tag`` (``TAG_BYTES`` long) in its metadata."""
        return with_tag(template.format, self.base(template, colour), tag)


@functools.cache
def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    # effect_noise is Gaussian around 128; three draws give three independent channels.
    del seed  # part of the cache key only: one noise field per channel
    return Image.effect_noise(size, 28)


def _field(size: tuple[int, int], colour: RGB, shift: int = 0) -> Image.Image:
    """A noisy field around ``colour`` (noise keeps files large and encoders honest)."""
    channels = []
    for index, value in enumerate(colour):
        noise = _noise(size, index)
        if shift:
            noise = noise.transpose(
                Image.Transpose.FLIP_LEFT_RIGHT if shift % 2 else Image.Transpose.ROTATE_180
            )
        channels.append(noise.point(lambda v, base=value: max(0, min(255, base + v - 128))))
    return Image.merge("RGB", channels)


def _encode(template: Template, colour: RGB) -> bytes:
    out = io.BytesIO()
    first = _field(template.size, colour)
    if template.format == "JPEG":
        first.save(out, "JPEG", quality=92)
    elif template.format == "PNG":
        image = first.convert("RGBA") if template.alpha else first
        if template.alpha:
            # A transparent corner: the picture has alpha, and no window's centre ever falls in it.
            corner = Image.new("L", (template.size[0] // 12, template.size[1] // 12), 0)
            alpha = Image.new("L", template.size, 255)
            alpha.paste(corner, (0, 0))
            image.putalpha(alpha)
        image.save(out, "PNG", compress_level=1)
    elif template.format == "GIF":
        frames = [
            _field(template.size, colour, shift).quantize(colors=64) for shift in range(template.frames)
        ]
        frames[0].save(out, "GIF", save_all=len(frames) > 1, append_images=frames[1:], duration=80, loop=0)
    elif template.format == "WEBP":
        frames = [_field(template.size, colour, shift) for shift in range(template.frames)]
        frames[0].save(
            out,
            "WEBP",
            quality=90,
            save_all=len(frames) > 1,
            append_images=frames[1:],
            duration=80,
            loop=0,
            xmp=_XMP_PLACEHOLDER,
        )
    else:
        raise ValueError(f"no encoder for {template.format}")
    return out.getvalue()


def with_tag(image_format: str, data: bytes, tag: bytes) -> bytes:
    """``data`` with ``tag`` in a metadata block its format ignores: a JPEG comment after SOI, a PNG
    text chunk after IHDR, a GIF comment after the global colour table, WebP's XMP placeholder."""
    if len(tag) != TAG_BYTES:
        raise ValueError(f"a tag is {TAG_BYTES} bytes")
    if image_format == "JPEG":
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + data[2:]
    if image_format == "PNG":
        body = b"tEXt" + b"Comment\x00" + tag
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return data[:33] + chunk + data[33:]  # signature (8) + IHDR (25)
    if image_format == "GIF":
        packed = data[10]
        table = 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0
        at = 13 + table
        return data[:at] + b"\x21\xfe" + bytes([len(tag)]) + tag + b"\x00" + data[at:]
    if image_format == "WEBP":
        if data.count(_XMP_PLACEHOLDER) != 1:
            raise ValueError("the WebP base has no single XMP placeholder")
        return data.replace(_XMP_PLACEHOLDER, tag)
    raise ValueError(f"cannot tag {image_format}")


@dataclass(frozen=True)
class Sample:
    """What a derived image shows: its decoded format and the palette colour at its centre (or None)."""

    format: str
    colour: int | None
    rgb: RGB


def sample(data: bytes) -> Sample:
    """Decode ``data`` (the first frame) and classify the median colour of the picture at its centre:
    a centred square half the short side, without pad's background (transparent, or white in JPEG),
    which may fill most of it (fit never enlarges: a 160x120 GIF padded to 500x495). Half the short
    side, so that the median is the colour and not the noise: a tenth was 1 or 4 pixels of an
    upscaled 18x196 or 21x612, and noise alone put 2 of 4,700 outside their colour."""
    with Image.open(io.BytesIO(data)) as image:
        image_format = image.format or "?"
        rgba = image.convert("RGBA")
    width, height = rgba.size
    side = max(1, min(width, height) // 2)
    left, top = (width - side) // 2, (height - side) // 2
    centre = rgba.crop((left, top, left + side, top + side))
    red, green, blue, alpha = centre.split()
    opaque = alpha.point(lambda value: 255 if value >= 128 else 0)
    lightest = ImageChops.darker(ImageChops.darker(red, green), blue)  # white only if every channel is
    not_white = lightest.point(lambda value: 0 if value > 235 else 255)
    mask = ImageChops.multiply(opaque, not_white)
    if mask.getbbox() is None:
        return Sample(image_format, None, (255, 255, 255))
    median = ImageStat.Stat(Image.merge("RGB", (red, green, blue)), mask).median
    r, g, b = (int(value) for value in median)
    distances = [((r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2) ** 0.5 for pr, pg, pb in PALETTE]
    nearest = min(range(len(PALETTE)), key=distances.__getitem__)
    colour = nearest if distances[nearest] <= RECOGNISED_DISTANCE else None
    return Sample(image_format, colour, (r, g, b))
