"""Opening and checking originals: only the JPEG, PNG, GIF, WebP, AVIF and HEIF decoders, under the
decoding limits.

No other Pillow plugin ever sees an uploaded file (``Image.open(formats=...)``), so never Ghostscript or
any other subprocess, and only once the raw container passed the limits (``pymager.adapters.container``):
pixels, side, frames, JPEG scans, metadata. Pillow's own header is checked again against the pixel and
side limits before any pixel is decoded.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pillow_heif
from PIL import Image, ImageFile, ImageSequence, UnidentifiedImageError

from pymager.adapters.container import check_container
from pymager.domain import DecodeLimits, ImageFormat, Traits
from pymager.errors import CorruptImage, DecodingLimit, UnsupportedImage

ACCEPTED_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "AVIF", "HEIF"]
ACCEPTED_NAMES = "JPEG, PNG, GIF, WebP, AVIF, HEIC"
# HEIF through libheif (pillow-heif): the primary image only, never its embedded thumbnails.
pillow_heif.register_heif_opener(thumbnails=False)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
# What Pillow's decoders raise on bad data (there is no common base class). libavif (Pillow's AVIF
# plugin) and libheif (pillow-heif) report a failed decode as RuntimeError, and Pillow's AVIF plugin
# divides by a sequence's timescale, 0 in a broken file.
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    RuntimeError,
    ZeroDivisionError,
)
DECODE_ERRORS_WITH_ZLIB = (*DECODE_ERRORS, zlib.error)
# How much of the file Pillow hands its decoder per call. Between calls it takes the GIL back, and
# while other threads run Python each take waits up to the interpreter's switch interval, so small
# blocks multiply a decode's time beside busy threads. A derivation hands over the whole file, up to
# 16 MiB at a time (a transient copy per running generation), asking for exactly what is left (a
# larger read costs more). The upload check, whose memory is bounded more tightly, reads 1 MiB at a time.
DERIVE_DECODER_BLOCK = 16 << 20
IDENTIFY_DECODER_BLOCK = 1 << 20


def check_whole_container(file: BinaryIO, limits: DecodeLimits) -> None:
    """Apply the container limits to the whole file, mapped rather than read into memory (a stream
    that is no file on disk is read whole)."""
    if file.seek(0, 2) == 0:
        return  # nothing to map; the decoder refuses an empty file
    try:
        fileno = file.fileno()
    except (OSError, AttributeError):  # io.UnsupportedOperation is an OSError
        file.seek(0)
        check_container(file.read(), limits)
        return
    with mmap.mmap(fileno, 0, access=mmap.ACCESS_READ) as data:
        check_container(data, limits)


@contextmanager
def open_image(
    file: BinaryIO,
    limits: DecodeLimits,
    decoder_block: int = 0,
    formats: list[str] | tuple[str, ...] = ACCEPTED_FORMATS,
) -> Iterator[ImageFile.ImageFile]:
    """Open ``file`` (from its start; the caller closes it) with the accepted decoders only (or
    ``formats``: pymager's own reduced copies) and check its pixel count and sides from the header.
    ``decoder_block``: the most bytes handed to the decoder at once, when more than Pillow's default."""
    file_size = file.seek(0, 2)
    file.seek(0)
    try:
        image = Image.open(file, formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodingLimit(
            f"{exc}; at most {limits.max_pixels} pixels are accepted (max_pixels)", "max_pixels"
        ) from None
    except DECODE_ERRORS_WITH_ZLIB as exc:
        raise _open_failure(file, exc) from None
    with image:
        limits.check_size(*image.size)
        image.decodermaxblock = max(image.decodermaxblock, min(decoder_block, file_size))
        yield image


@contextmanager
def decoding(image_format: ImageFormat | str) -> Iterator[None]:
    """Turn any decoder failure into ``CorruptImage`` (naming ``image_format``)."""
    name = image_format if isinstance(image_format, str) else image_format.value
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise DecodingLimit(f"{exc} (max_pixels)", "max_pixels") from None
    except DECODE_ERRORS_WITH_ZLIB as exc:
        raise CorruptImage(f"the {name} data is corrupt or truncated: {_one_line(exc)}") from None


def decode_all_frames(
    image: ImageFile.ImageFile, at_least: tuple[int, int] | None = None
) -> Iterator[Image.Image]:
    """Decode every pixel of every frame, yielding each decoded frame (valid until the next). A JPEG
    is decoded at the smallest DCT scale (1/8 at most) still ``at_least`` that size, by default 1/8:
    libjpeg still entropy-decodes every scan (so truncation and broken Huffman data are caught) but
    skips most of the IDCT work."""
    if image.format == "JPEG":
        image.draft(None, at_least or (max(1, image.width // 8), max(1, image.height // 8)))
    if image.format == "HEIF":  # a collection of pictures (a burst), not an animation: the primary one
        image.load()
        yield image
        return
    for frame in ImageSequence.Iterator(image):
        frame.load()
        yield frame


def traits(image: ImageFile.ImageFile) -> Traits:
    """Whether the opened ``image`` animates (HEIF collections do not) and has transparency, from what
    its header told Pillow (the first frame's)."""
    frames = 1 if image.format == "HEIF" else getattr(image, "n_frames", 1)
    alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    return Traits(animated=frames > 1, alpha=alpha)


def verify_png(file: BinaryIO, limits: DecodeLimits) -> None:
    """Check every chunk's CRC and the chunk structure up to IEND (``load`` does not)."""
    with open_image(file, limits) as image, decoding(ImageFormat.PNG):
        image.verify()


def _open_failure(file: BinaryIO, exc: Exception) -> UnsupportedImage | CorruptImage:
    """No accepted decoder could open the file: unsupported, unless it starts with the signature of an
    accepted format (a WebP is decoded while opening, so a truncated one fails here)."""
    file.seek(0)
    claimed = _claimed_format(file.read(12))
    if claimed is None:
        return UnsupportedImage(f"not an image in an accepted format ({ACCEPTED_NAMES})")
    reason = "its header cannot be read" if isinstance(exc, UnidentifiedImageError) else _one_line(exc)
    return CorruptImage(f"the {claimed.value} data is corrupt or truncated: {reason}")


def _claimed_format(head: bytes) -> ImageFormat | None:
    if head.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ImageFormat.GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if head[4:8] == b"ftyp":
        if head[8:12] in _AVIF_BRANDS:
            return ImageFormat.AVIF
        if head[8:12] in _HEIF_BRANDS:
            return ImageFormat.HEIF
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
