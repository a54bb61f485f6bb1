"""Deterministic test images, generated in code and returned as encoded bytes.

Every generator is pure: the same arguments give the same bytes, and nothing touches the disk.
``has_metadata`` inspects the raw container (JPEG segments, PNG chunks, RIFF chunks, GIF blocks, the
ISOBMFF ``meta`` box of AVIF and HEIF) so a test can prove that a derived image carries no EXIF, XMP,
comments, text or (AVIF) ICC profile.
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
    if data[4:8] == b"ftyp":
        return _isobmff_metadata(data)
    raise ValueError("not a JPEG, PNG, WebP, GIF or ISOBMFF (AVIF, HEIF)")


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


def _isobmff_metadata(data: bytes) -> list[str]:
    """Exif and XMP items (``iinf``) and ICC colour properties (``colr`` of type ``prof``/``rICC``) in
    the top-level ``meta`` box of an AVIF or HEIF file."""
    found: list[str] = []
    for kind, body in _boxes(data, 0, len(data)):
        if kind != b"meta":
            continue
        for child, child_body in _boxes(data, body + 4, _box_end(data, body)):  # FullBox: 4 bytes
            if child == b"iinf":
                found.extend(_item_metadata(data, child_body))
            elif child == b"iprp":
                for prop, prop_body in _descendants(data, child_body, (b"ipco",)):
                    if prop == b"colr" and data[prop_body : prop_body + 4] in (b"prof", b"rICC"):
                        found.append("icc")
    return found


def _item_metadata(data: bytes, iinf: int) -> list[str]:
    found = []
    version = data[iinf]
    first = iinf + 4 + (2 if version == 0 else 4)  # FullBox header, then the entry count
    for kind, body in _boxes(data, first, _box_end(data, iinf)):
        if kind != b"infe" or data[body] < 2:
            continue
        at = body + 4 + (2 if data[body] == 2 else 4) + 2  # item id, protection index
        item_type = data[at : at + 4]
        if item_type == b"Exif":
            found.append("exif")
        elif item_type == b"mime" and b"application/rdf+xml" in data[at + 4 : _box_end(data, body)]:
            found.append("xmp")
    return found


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int]]:
    """The boxes from ``start`` to ``end`` as (kind, payload offset)."""
    boxes = []
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[start + 8 : start + 16])
            header = 16
        size = end - start if size == 0 else size
        if size < header:
            raise ValueError(f"an ISOBMFF box of {size} bytes at {start}")
        boxes.append((kind, start + header))
        start += size
    return boxes


def _box_end(data: bytes, body: int) -> int:
    """The end of the box whose payload starts at ``body`` (a 32-bit size)."""
    (size,) = struct.unpack(">I", data[body - 8 : body - 4])
    return len(data) if size == 0 else body - 8 + size


def _descendants(data: bytes, body: int, containers: tuple[bytes, ...]) -> list[tuple[bytes, int]]:
    found = []
    for kind, child in _boxes(data, body, _box_end(data, body)):
        found.append((kind, child))
        if kind in containers:
            found.extend(_descendants(data, child, containers))
    return found


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


# --- geometry: pictures whose corners show where the content lands -----------------------------------

GREY: RGB = (128, 128, 128)
MAGENTA: RGB = (255, 0, 255)


def corner_markers(width: int, height: int) -> Image.Image:
    """A grey RGB picture with a marker in each corner, a quarter of each side (at least 1 px), in
    ``QUADRANT_COLOURS`` (TL, TR, BL, BR). On a 1-pixel strip the bottom markers paint over the top."""
    image = Image.new("RGB", (width, height), GREY)
    marker_w, marker_h = max(1, width // 4), max(1, height // 4)
    corners = [(0, 0), (width - marker_w, 0), (0, height - marker_h), (width - marker_w, height - marker_h)]
    for (left, top), colour in zip(corners, QUADRANT_COLOURS, strict=True):
        image.paste(colour, (left, top, left + marker_w, top + marker_h))
    return image


def stored(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels to store so that a viewer applying EXIF ``orientation`` shows ``upright``."""
    method = INVERSE_TRANSPOSITION[orientation]
    return upright if method is None else upright.transpose(method)


def oriented(upright: Image.Image, orientation: int, image_format: str = "PNG", **params: Any) -> bytes:
    """``upright`` stored for EXIF ``orientation`` and tagged with it, encoded as ``image_format``."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return encode(stored(upright, orientation), image_format, exif=exif.tobytes(), **params)


# --- colour: ICC profiles built from their published definitions -------------------------------------
# A matrix/TRC display profile (ICC v2) is a 128-byte header, a tag table and a few small tags: the
# primaries adapted to the D50 connection space (Bradford), the white point and one tone curve per
# channel. These are the colour spaces' own definitions, so a test can check littlecms' result against
# an independent conversion (coloraide) of the same values.

XY = tuple[float, float]
D65: XY = (0.3127, 0.3290)
D50: XY = (0.3457, 0.3585)
_D50_XYZ = (0.9642, 1.0, 0.8249)  # the ICC connection space's illuminant, as the ICC spec rounds it
_BRADFORD = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))


def _srgb_decode(value: float) -> float:
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _prophoto_decode(value: float) -> float:
    return value / 16 if value < 16 / 512 else value**1.8


ADOBE_RGB = {
    "name": "Adobe RGB (1998) (test)",
    "primaries": ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)),
    "white": D65,
    "decode": lambda value: value ** (563 / 256),
}
DISPLAY_P3 = {
    "name": "Display P3 (test)",
    "primaries": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
    "white": D65,
    "decode": _srgb_decode,
}
PROPHOTO_RGB = {
    "name": "ProPhoto RGB (test)",
    "primaries": ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)),
    "white": D50,
    "decode": _prophoto_decode,
}
SRGB = {
    "name": "sRGB (test)",
    "primaries": ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)),
    "white": D65,
    "decode": _srgb_decode,
}


def rgb_profile(space: dict[str, Any], padding: int = 0) -> bytes:
    """An ICC v2 RGB display profile of ``space`` (one of ``ADOBE_RGB``, ``DISPLAY_P3``,
    ``PROPHOTO_RGB``, ``SRGB``); ``padding`` bytes of a private tag make it as large as profiles that
    carry lookup tables."""
    matrix = _rgb_to_xyz_d50(space["primaries"], space["white"])
    curve = _curve(space["decode"])
    tags = [
        (b"desc", _desc(space["name"])),
        (b"cprt", b"text\x00\x00\x00\x00Generated by pymager's tests\x00"),
        (b"wtpt", _xyz(_D50_XYZ)),
        (b"rXYZ", _xyz(tuple(row[0] for row in matrix))),
        (b"gXYZ", _xyz(tuple(row[1] for row in matrix))),
        (b"bXYZ", _xyz(tuple(row[2] for row in matrix))),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    if padding:
        tags.append((b"pymp", b"zzzz\x00\x00\x00\x00" + bytes(padding)))
    return _profile(b"RGB ", tags)


def grey_profile(gamma: float = 2.2) -> bytes:
    """An ICC v2 grey display profile with a pure ``gamma`` tone curve and a D50 white."""
    tags = [
        (b"desc", _desc(f"Gray gamma {gamma} (test)")),
        (b"cprt", b"text\x00\x00\x00\x00Generated by pymager's tests\x00"),
        (b"wtpt", _xyz(_D50_XYZ)),
        (b"kTRC", _curve(lambda value: value**gamma)),
    ]
    return _profile(b"GRAY", tags)


CMYK_PROFILE_PATH = "/usr/share/color/icc/ghostscript/default_cmyk.icc"


def cmyk_profile() -> bytes:
    """A real CMYK press profile with lookup tables: Ghostscript's SWOP profile (Debian package
    ``libgs-common``)."""
    try:
        with open(CMYK_PROFILE_PATH, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise RuntimeError(
            f"{CMYK_PROFILE_PATH} is missing: install the Debian package libgs-common"
        ) from None


def _profile(colour_space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        table += struct.pack(">4sII", signature, offset + len(body), len(data))
        body += data + b"\x00" * (-len(data) % 4)
    size = 128 + table_size + len(body)
    header = struct.pack(
        ">I4sI4s4s4s6H4s4sI4s4sQI3i4s16s28s",
        size,
        b"pymg",
        0x02100000,
        b"mntr",
        colour_space,
        b"XYZ ",
        2024,
        1,
        1,
        0,
        0,
        0,
        b"acsp",
        b"\x00" * 4,
        0,
        b"\x00" * 4,
        b"\x00" * 4,
        0,
        0,
        *(_s15(value) for value in _D50_XYZ),
        b"pymg",
        b"\x00" * 16,
        b"\x00" * 28,
    )
    return header + table + body


def _s15(value: float) -> int:
    return round(value * 65536)


def _xyz(values: tuple[float, ...]) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + struct.pack(">3i", *(_s15(value) for value in values))


def _curve(decode: Any, entries: int = 1024) -> bytes:
    points = [round(decode(index / (entries - 1)) * 65535) for index in range(entries)]
    return b"curv\x00\x00\x00\x00" + struct.pack(f">I{entries}H", entries, *points)


def _desc(name: str) -> bytes:
    ascii_name = name.encode("ascii") + b"\x00"
    return (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(ascii_name))
        + ascii_name
        + struct.pack(">II", 0, 0)
        + struct.pack(">HB", 0, 0)
        + b"\x00" * 67
    )


def _xyz_of(xy: XY) -> tuple[float, float, float]:
    x, y = xy
    return x / y, 1.0, (1 - x - y) / y


def _rgb_to_xyz_d50(primaries: tuple[XY, XY, XY], white: XY) -> list[list[float]]:
    """The RGB → XYZ matrix of ``primaries`` and ``white``, adapted to D50 with Bradford (as ICC
    display profiles store it: the columns are the rXYZ, gXYZ, bXYZ tags)."""
    columns = [_xyz_of(primary) for primary in primaries]
    primaries_matrix = [[columns[c][r] for c in range(3)] for r in range(3)]
    scales = _solve(primaries_matrix, list(_xyz_of(white)))
    rgb_to_xyz = [[primaries_matrix[r][c] * scales[c] for c in range(3)] for r in range(3)]
    source_cone = _apply(_BRADFORD, _xyz_of(white))
    target_cone = _apply(_BRADFORD, _D50_XYZ)
    scale = [[(target_cone[i] / source_cone[i]) if i == j else 0.0 for j in range(3)] for i in range(3)]
    adapt = _multiply(_inverse(_BRADFORD), _multiply(scale, _BRADFORD))
    return _multiply(adapt, rgb_to_xyz)


def _apply(matrix: Any, vector: Any) -> list[float]:
    return [sum(matrix[r][c] * vector[c] for c in range(3)) for r in range(3)]


def _multiply(a: Any, b: Any) -> list[list[float]]:
    return [[sum(a[r][k] * b[k][c] for k in range(3)) for c in range(3)] for r in range(3)]


def _inverse(m: Any) -> list[list[float]]:
    det = (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )
    cofactors = [
        [
            (m[(r + 1) % 3][(c + 1) % 3] * m[(r + 2) % 3][(c + 2) % 3])
            - (m[(r + 1) % 3][(c + 2) % 3] * m[(r + 2) % 3][(c + 1) % 3])
            for r in range(3)
        ]
        for c in range(3)
    ]
    return [[cofactors[r][c] / det for c in range(3)] for r in range(3)]


def _solve(matrix: Any, vector: list[float]) -> list[float]:
    return _apply(_inverse(matrix), vector)


# -- HEIF and AVIF (ISOBMFF boxes) ----------------------------------------------------------------

# Boxes whose payload is more boxes, and the bytes before the first child (a FullBox's version and
# flags; ``iinf``'s entry count, for its version 0).
_ISOBMFF_CONTAINERS = {
    b"meta": 4,
    b"iinf": 6,
    b"iprp": 0,
    b"ipco": 0,
    b"moov": 0,
    b"trak": 0,
    b"mdia": 0,
    b"minf": 0,
    b"stbl": 0,
}


def avif(width: int = 40, height: int = 30, *, mode: str = "RGB", frames: int = 1, **params: Any) -> bytes:
    """An AVIF gradient made by Pillow (RGBA: alpha 128); with ``frames`` > 1 an image sequence."""
    image = gradient(width, height).convert(mode)
    if mode == "RGBA":
        image.putalpha(128)
    others = [gradient(width, height).rotate(90 * i).convert(mode) for i in range(1, frames)]
    return encode(image, "AVIF", save_all=frames > 1, append_images=others, **params)


def heic(width: int = 40, height: int = 30, *, mode: str = "RGB", tile: int = 0, **params: Any) -> bytes:
    """A HEIC gradient made by pillow-heif (RGBA: alpha 128); with ``tile`` a grid of tiles that size."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    image = gradient(width, height).convert(mode)
    if mode == "RGBA":
        image.putalpha(128)
    pillow_heif.options.GRID_TILE_SIZE = tile
    try:
        return encode(image, "HEIF", **params)
    finally:
        pillow_heif.options.GRID_TILE_SIZE = 0


def isobmff_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """Every box of ``data`` (children after their parent) as (kind, payload start, end)."""
    end = len(data) if end is None else end
    boxes = []
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        size = end - start if size == 0 else size
        boxes.append((kind, start + 8, start + size))
        if kind in _ISOBMFF_CONTAINERS:
            skip = 8 if kind == b"iinf" and data[start + 8] else _ISOBMFF_CONTAINERS[kind]
            boxes.extend(isobmff_boxes(data, start + 8 + skip, start + size))
        start += size
    return boxes


def isobmff_patch(data: bytes, kind: bytes, at: int, value: bytes, *, nth: int | None = None) -> bytes:
    """``data`` with ``value`` written ``at`` bytes into the payload of every box of ``kind`` (or only
    the ``nth``): a real file whose header then declares what a test needs."""
    patched = bytearray(data)
    found = [body for box_kind, body, _ in isobmff_boxes(data) if box_kind == kind]
    assert found, f"no {kind!r} box"
    for body in found if nth is None else [found[nth]]:
        patched[body + at : body + at + len(value)] = value
    return bytes(patched)


def box(kind: bytes, *children: bytes, version: int | None = None, flags: int = 0) -> bytes:
    """An ISOBMFF box of ``children`` (bytes); a FullBox when ``version`` is given."""
    body = b"".join(children)
    if version is not None:
        body = struct.pack(">I", version << 24 | flags) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def ispe(width: int, height: int) -> bytes:
    return box(b"ispe", struct.pack(">II", width, height), version=0)


def heif_items(*types: bytes) -> bytes:
    """An ``iinf`` box of items 1, 2 … of ``types`` (``b"hvc1"``, ``b"grid"``, ``b"Exif"``, ``b"mime"``)."""
    entries = [
        box(b"infe", struct.pack(">HH4s", item_id, 0, kind), b"\0", version=2)
        for item_id, kind in enumerate(types, start=1)
    ]
    return box(b"iinf", struct.pack(">H", len(entries)), *entries, version=0)


def heif_locations(*items: tuple[int, int, list[tuple[int, int]]]) -> bytes:
    """An ``iloc`` box (version 1, 32-bit offsets and lengths, no base offset) of (item id,
    construction method, [(offset, length), …])."""
    body = [struct.pack(">BBH", 0x44, 0x00, len(items))]
    for item_id, method, extents in items:
        body.append(struct.pack(">HHHH", item_id, method, 0, len(extents)))
        body.extend(struct.pack(">II", offset, length) for offset, length in extents)
    return box(b"iloc", *body, version=1)


def heif_file(*meta: bytes, brand: bytes = b"heic", after: bytes = b"") -> bytes:
    """A HEIF file: ``ftyp`` of ``brand``, a ``meta`` box of a picture handler and ``meta`` boxes,
    then ``after`` (e.g. an ``mdat``)."""
    handler = box(b"hdlr", struct.pack(">I4s12x", 0, b"pict"), b"\0", version=0)
    ftyp = box(b"ftyp", brand, struct.pack(">I", 0), b"mif1", brand)
    return ftyp + box(b"meta", handler, *meta, version=0) + after
