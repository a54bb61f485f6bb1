"""Deterministic test images, generated in code and returned as encoded bytes.

Every generator is pure: the same arguments give the same bytes, and nothing touches the disk.
``has_metadata`` inspects the raw container (JPEG segments, PNG chunks, RIFF chunks, GIF blocks) so a
test can prove that a derived image carries no EXIF, XMP, comments or text.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from typing import Any

from PIL import ExifTags, Image, ImageCms, ImageDraw
from PIL.PngImagePlugin import PngInfo

RGB = tuple[int, int, int]

RED: RGB = (255, 0, 0)
GREEN: RGB = (0, 255, 0)
BLUE: RGB = (0, 0, 255)
YELLOW: RGB = (255, 255, 0)
# Colours of the quadrants made by ``quadrants``: top-left, top-right, bottom-left, bottom-right.
QUADRANT_COLOURS: tuple[RGB, RGB, RGB, RGB] = (RED, GREEN, BLUE, YELLOW)

GPS_IFD = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}


@functools.cache
def srgb_profile() -> bytes:
    """The bytes of an sRGB ICC profile (made once: the header holds its creation time)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def quadrants(width: int, height: int) -> Image.Image:
    """An RGB image whose four quadrants are ``QUADRANT_COLOURS`` (TL, TR, BL, BR)."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    half_w, half_h = width // 2, height // 2
    boxes = [
        (0, 0, half_w - 1, half_h - 1),
        (half_w, 0, width - 1, half_h - 1),
        (0, half_h, half_w - 1, height - 1),
        (half_w, half_h, width - 1, height - 1),
    ]
    for box, colour in zip(boxes, QUADRANT_COLOURS, strict=True):
        draw.rectangle(box, fill=colour)
    return image


def gradient(width: int, height: int) -> Image.Image:
    """An RGB image with a horizontal red and a vertical green gradient (compresses poorly enough to
    make truncation tests meaningful)."""
    red = Image.linear_gradient("L").rotate(90).resize((width, height))
    green = Image.linear_gradient("L").resize((width, height))
    blue = Image.new("L", (width, height), 96)
    return Image.merge("RGB", (red, green, blue))


def encode(image: Image.Image, image_format: str, **params: Any) -> bytes:
    """``image`` encoded as ``image_format`` with Pillow's save ``params``."""
    out = io.BytesIO()
    image.save(out, image_format, **params)
    return out.getvalue()


def jpeg(
    width: int = 64,
    height: int = 48,
    *,
    color: RGB = (200, 30, 30),
    image: Image.Image | None = None,
    orientation: int | None = None,
    gps: bool = False,
    comment: bytes | None = None,
    xmp: bytes | None = None,
    icc: bool = False,
    progressive: bool = False,
    mode: str = "RGB",
    quality: int = 90,
) -> bytes:
    """A JPEG of a solid ``color`` (or of ``image``) in ``mode`` ("RGB", "L" or "CMYK"), with the
    requested metadata."""
    source = image if image is not None else Image.new("RGB", (width, height), color)
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif[ExifTags.IFD.GPSInfo] = GPS_IFD
    params: dict[str, Any] = {"quality": quality, "progressive": progressive}
    if len(exif):
        params["exif"] = exif.tobytes()
    if comment is not None:
        params["comment"] = comment
    if xmp is not None:
        params["xmp"] = xmp
    if icc:
        params["icc_profile"] = srgb_profile()
    return encode(source.convert(mode), "JPEG", **params)


def png(
    width: int = 64,
    height: int = 48,
    *,
    mode: str = "RGB",
    color: RGB | None = None,
    transparency: bool = False,
    text: dict[str, str] | None = None,
    icc: bool = False,
) -> bytes:
    """A PNG in ``mode``: RGB, RGBA (semi-transparent: alpha 128), LA (alpha 128), P (with a
    transparent index when ``transparency``), L or I;16 (a 16-bit ramp). A gradient unless ``color``."""
    rgb = gradient(width, height) if color is None else Image.new("RGB", (width, height), color)
    params: dict[str, Any] = {}
    if mode in ("RGBA", "LA"):
        image = rgb.convert(mode)
        image.putalpha(128)
    elif mode == "P":
        image = rgb.quantize(colors=16)
        if transparency:
            params["transparency"] = 0
    elif mode == "I;16":
        image = rgb.convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
    else:
        image = rgb.convert(mode)
    if text:
        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        params["pnginfo"] = info
    if icc:
        params["icc_profile"] = srgb_profile()
    return encode(image, "PNG", **params)


def gif(width: int = 64, height: int = 48, *, frames: int = 1) -> bytes:
    """A GIF; with ``frames`` > 1 an animation whose first frame is red."""
    colours = [RED, GREEN, BLUE, YELLOW]
    images = [Image.new("RGB", (width, height), colours[i % 4]).convert("P") for i in range(frames)]
    return encode(images[0], "GIF", save_all=frames > 1, append_images=images[1:], duration=100, loop=0)


def webp(width: int = 64, height: int = 48, *, mode: str = "RGB", frames: int = 1) -> bytes:
    """A lossless WebP gradient (RGBA: alpha 128); with ``frames`` > 1 an animation."""
    image = gradient(width, height).convert(mode)
    if mode == "RGBA":
        image.putalpha(128)
    others = [Image.new(mode, (width, height)) for _ in range(frames - 1)]
    return encode(image, "WEBP", lossless=True, save_all=frames > 1, append_images=others)


def tiff(width: int = 64, height: int = 48) -> bytes:
    return encode(gradient(width, height), "TIFF")


def bmp(width: int = 64, height: int = 48) -> bytes:
    return encode(gradient(width, height), "BMP")


def exif_tags(data: bytes) -> dict[int, Any]:
    """The EXIF tags Pillow finds in an encoded image; the GPS IFD, when present, under its tag."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        tags: dict[int, Any] = dict(exif)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if gps:
        tags[ExifTags.IFD.GPSInfo] = dict(gps)
    return tags


def has_metadata(data: bytes) -> list[str]:
    """The kinds of metadata (``exif``, ``gps``, ``xmp``, ``comment``, ``text``, ``photoshop``) an
    encoded image carries, from its raw container and from what Pillow reads. Empty when clean."""
    found = set(_container_metadata(data))
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        info = image.info
        found.update(kind for key, kind in _INFO_KINDS.items() if info.get(key))
        if getattr(image, "text", None):
            found.add("text")
    if exif_tags(data).get(ExifTags.IFD.GPSInfo):
        found.add("gps")
    return sorted(found)


_INFO_KINDS = {"exif": "exif", "xmp": "xmp", "XML:com.adobe.xmp": "xmp", "comment": "comment"}


def _container_metadata(data: bytes) -> list[str]:
    if data.startswith(b"\xff\xd8"):
        return _jpeg_metadata(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_metadata(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp_metadata(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _gif_metadata(data)
    raise ValueError("not a JPEG, PNG, WebP or GIF")


def _jpeg_metadata(data: bytes) -> list[str]:
    found: list[str] = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: no more metadata segments
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            found.append("exif")
        elif marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap"):
            found.append("xmp")
        elif marker == 0xED:
            found.append("photoshop")
        elif marker == 0xFE:
            found.append("comment")
        pos += 2 + length
    return found


_PNG_CHUNKS = {b"tEXt": "text", b"zTXt": "text", b"iTXt": "text", b"eXIf": "exif"}


def _png_metadata(data: bytes) -> list[str]:
    found: list[str] = []
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind in _PNG_CHUNKS:
            found.append(_PNG_CHUNKS[kind])
        if kind == b"iTXt" and data[pos + 8 :].startswith(b"XML:com.adobe.xmp"):
            found.append("xmp")
        pos += 12 + length
    return found


def _webp_metadata(data: bytes) -> list[str]:
    found: list[str] = []
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        if kind == b"EXIF":
            found.append("exif")
        elif kind == b"XMP ":
            found.append("xmp")
        pos += 8 + length + (length & 1)
    return found


def _gif_metadata(data: bytes) -> list[str]:
    found: list[str] = []
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data) and data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: label, then data sub-blocks
            label = data[pos + 1]
            if label == 0xFE:
                found.append("comment")
            elif label == 0xFF and data[pos + 3 : pos + 14] == b"XMP DataXMP":
                found.append("xmp")
            pos = _skip_sub_blocks(data, pos + 2)
        elif data[pos] == 0x2C:  # image descriptor, local colour table, LZW code size, sub-blocks
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)
        else:
            raise ValueError(f"unexpected GIF block 0x{data[pos]:02x} at {pos}")
    return found


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] != 0:
        pos += 1 + data[pos]
    return pos + 1


# --- hostile input -------------------------------------------------------------------------------
# Files that lie in their headers, carry bombs or hide other formats. Each is small to send.


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_flood(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` (8-bit RGB) over a tiny, meaningless body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def png_with_chunk(kind: bytes, body: bytes, base: bytes | None = None) -> bytes:
    """``base`` (a small PNG) with one more chunk inserted right after IHDR."""
    data = base if base is not None else png(16, 16, color=RED)
    after_ihdr = 8 + 25
    return data[:after_ihdr] + png_chunk(kind, body) + data[after_ihdr:]


def png_text_bomb(kind: bytes = b"zTXt", inflated: int = 64 * 1024 * 1024) -> bytes:
    """A valid PNG with a compressed metadata chunk (zTXt, iTXt or iCCP) that inflates to ``inflated``
    bytes of zeros from a few tens of kilobytes."""
    compressed = zlib.compress(b"\x00" * inflated, 9)
    if kind == b"iTXt":
        body = b"Comment\x00\x01\x00\x00\x00" + compressed
    else:
        body = (b"Comment" if kind == b"zTXt" else b"icc") + b"\x00\x00" + compressed
    return png_with_chunk(kind, body)


def apng_declaring(frames: int) -> bytes:
    """A two-frame APNG whose acTL claims ``frames`` frames."""
    data = encode(
        Image.new("RGB", (8, 8), RED), "PNG", save_all=True, append_images=[Image.new("RGB", (8, 8), BLUE)]
    )
    at = data.index(b"acTL") - 4
    return data[:at] + png_chunk(b"acTL", struct.pack(">II", frames, 0)) + data[at + 20 :]


def jpeg_flood(width: int, height: int) -> bytes:
    """A small valid JPEG whose SOF header is patched to declare ``width`` x ``height``."""
    data = bytearray(jpeg(16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_segments(kind: int, count: int, size: int = 65533) -> bytes:
    """A small valid JPEG with ``count`` extra segments of marker 0xFF``kind`` (APPn, COM) of ``size``
    payload bytes each."""
    data = jpeg(16, 16)
    segment = bytes([0xFF, kind]) + struct.pack(">H", size + 2) + b"A" * size
    return data[:2] + segment * count + data[2:]


def jpeg_with_scans(scans: int) -> bytes:
    """A progressive JPEG whose first scan is repeated so that it has about ``scans`` scans (the
    "thousands of scans" CPU bomb)."""
    data = jpeg(image=gradient(32, 32), progressive=True)
    first = data.index(b"\xff\xda")
    second = data.index(b"\xff\xda", first + 2)
    scan = data[first:second]
    natural = data.count(b"\xff\xda")
    return data[:first] + scan * max(0, scans - natural) + data[first:]


def _gif_frame(left: int = 0, top: int = 0, width: int = 1, height: int = 1) -> bytes:
    """An image descriptor and the LZW data of a ``width`` x ``height`` frame (colour 0, no local table);
    the data only covers 1x1, the decoder pads or fails the rest."""
    return b"\x2c" + struct.pack("<HHHHB", left, top, width, height, 0) + b"\x02\x02\x44\x01\x00"


def gif_flood(
    screen: tuple[int, int] = (1, 1), frames: int = 1, frame_size: tuple[int, int] = (1, 1)
) -> bytes:
    """A hand-made GIF: a ``screen`` logical screen, a 2-colour table and ``frames`` frames of
    ``frame_size`` at the origin (a frame larger than the screen grows Pillow's canvas)."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\xff\x00\x00\x00\x00\xff"
    return header + _gif_frame(0, 0, *frame_size) * frames + b"\x3b"


def webp_flood(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8X canvas declares ``width`` x ``height`` around a 4x4 bitstream."""
    data = encode(Image.new("RGBA", (4, 4), (1, 2, 3, 128)), "WEBP", lossless=True)
    vp8l = data[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x10\x00\x00\x00"
    vp8x += struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def huge_valid_png(width: int, height: int) -> bytes:
    """A valid bilevel PNG of ``width`` x ``height``: a few kilobytes that decode to many megapixels."""
    return encode(Image.new("1", (width, height), 1), "PNG", optimize=True)


def huge_valid_jpeg(width: int, height: int) -> bytes:
    return encode(Image.new("L", (width, height), 128), "JPEG", quality=10)


# EXIF orientation -> how to store an upright picture so that a viewer applying that orientation shows
# it upright again (the inverse of the display transposition): tests store pictures this way.
INVERSE_TRANSPOSITION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
