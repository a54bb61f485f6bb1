"""The Pillow image processor: identify (check and fully decode) originals and derive sized copies.

Only the JPEG, PNG, GIF and WebP decoders ever see an uploaded file (``Image.open(formats=...)``: no
other plugin, so never Ghostscript or any other subprocess), and only once the raw container passed the
decoding limits (``pymager.adapters.container``): pixels, side, frames, JPEG scans, metadata. Pillow's
own header is checked again against the pixel and side limits before any pixel is decoded.

Derived images are produced in a
single resampling pass: for JPEG the decoder first scales by 1/2, 1/4 or 1/8 in the DCT domain
(``draft``), then one ``resize`` with a source crop box does the cover-and-centre-crop; the EXIF
orientation is applied last, to the small result.
"""

from __future__ import annotations

import logging
import math
import mmap
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from PIL import Image, ImageFile, ImageSequence, UnidentifiedImageError
from zope.interface import implementer

from pymager.adapters.container import check_container
from pymager.domain import DecodeLimits, ImageFormat, ImageInfo, Size
from pymager.errors import CorruptImage, DecodingLimit, UnsupportedImage
from pymager.interfaces import IImageProcessor

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = ["JPEG", "PNG", "GIF", "WEBP"]
# What Pillow's decoders raise on bad data (there is no common base class).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError, struct.error)
DECODE_ERRORS_WITH_ZLIB = (*DECODE_ERRORS, zlib.error)
# Resize first by an integer factor down to at most this many times the final size, then resample.
REDUCING_GAP = 2.0
# How much of the file Pillow hands its decoder per call. Between calls it takes the GIL back, and
# while other threads run Python each take waits up to the interpreter's switch interval, so small
# blocks multiply a decode's time beside busy threads. A derivation hands over the whole file, up to
# 16 MiB at a time (a transient copy per running generation), asking for exactly what is left (a
# larger read costs more). The upload check, whose memory is bounded more tightly, reads 1 MiB at a time.
DERIVE_DECODER_BLOCK = 16 << 20
IDENTIFY_DECODER_BLOCK = 1 << 20
WHITE = 255

# EXIF orientation → the transposition that displays the stored pixels upright.
_TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@implementer(IImageProcessor)
class PillowProcessor:
    """``IImageProcessor`` on Pillow. Thread-safe: it keeps no state besides its settings."""

    def __init__(self, jpeg_quality: int = 85, limits: DecodeLimits | None = None) -> None:
        self.jpeg_quality = jpeg_quality
        self.limits = limits or DecodeLimits()

    def identify(self, source: BinaryIO) -> ImageInfo:
        _check_container(source, self.limits)
        with self._open(source, IDENTIFY_DECODER_BLOCK) as image:
            image_format = ImageFormat(image.format)
            width, height = image.size  # as stored, before any draft scaling
            with _decoding(image_format):
                self.limits.check_frames(getattr(image, "n_frames", 1), width, height)
                _decode_all_frames(image)
        if image_format is ImageFormat.PNG:
            self._verify_png(source)
        return ImageInfo(image_format, width, height)

    def derive(self, source: BinaryIO, size: Size, image_format: ImageFormat, out: BinaryIO) -> None:
        with self._open(source, DERIVE_DECODER_BLOCK) as image:
            source_format = ImageFormat(image.format)
            icc_profile: bytes | None = image.info.get("icc_profile") or None
            source_colours = _colour_space(image.mode)
            with _decoding(source_format):
                orientation = _load_first_frame(image, size)
                result = _cover(_working_copy(image), size, orientation)
        result = _for_output(result, image_format)
        if _colour_space(result.mode) != source_colours or image_format is ImageFormat.GIF:
            icc_profile = None  # a profile describes one colour space; GIF carries none
        self._encode(result, image_format, icc_profile, out)

    @contextmanager
    def _open(self, file: BinaryIO, decoder_block: int = 0) -> Iterator[ImageFile.ImageFile]:
        """Open ``file`` (from its start; the caller closes it) with the accepted decoders only and
        check its pixel count and sides from the header. ``decoder_block``: the most bytes handed to
        the decoder at once, when more than Pillow's default."""
        file_size = file.seek(0, 2)
        file.seek(0)
        try:
            image = Image.open(file, formats=ACCEPTED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DecodingLimit(
                f"{exc}; at most {self.limits.max_pixels} pixels are accepted (max_pixels)", "max_pixels"
            ) from None
        except DECODE_ERRORS_WITH_ZLIB as exc:
            raise _open_failure(file, exc) from None
        with image:
            self.limits.check_size(*image.size)
            image.decodermaxblock = max(image.decodermaxblock, min(decoder_block, file_size))
            yield image

    def _verify_png(self, source: BinaryIO) -> None:
        """Check every chunk's CRC and the chunk structure up to IEND (``load`` does not)."""
        with self._open(source) as image, _decoding(ImageFormat.PNG):
            image.verify()

    def _encode(
        self, image: Image.Image, image_format: ImageFormat, icc_profile: bytes | None, out: BinaryIO
    ) -> None:
        transparency = image.info.get("transparency")
        image.info.clear()  # resize/convert copy .info (EXIF, XMP, comments, text): write none of it
        params: dict[str, Any] = {}
        if icc_profile is not None:
            params["icc_profile"] = icc_profile
        if image_format is ImageFormat.JPEG:
            params.update(quality=self.jpeg_quality, optimize=True)
        elif image_format is ImageFormat.PNG:
            params.update(compress_level=6)
        elif image_format is ImageFormat.WEBP:
            params.update(quality=self.jpeg_quality)
        elif isinstance(transparency, int):  # the palette index _palette chose, never a colour key
            params.update(transparency=transparency)
        image.save(out, image_format.value, **params)


def _check_container(file: BinaryIO, limits: DecodeLimits) -> None:
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


def _open_failure(file: BinaryIO, exc: Exception) -> UnsupportedImage | CorruptImage:
    """No accepted decoder could open the file: unsupported, unless it starts with the signature of an
    accepted format (a WebP is decoded while opening, so a truncated one fails here)."""
    file.seek(0)
    claimed = _claimed_format(file.read(12))
    if claimed is None:
        return UnsupportedImage("not an image in an accepted format (JPEG, PNG, GIF, WebP)")
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
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def _decoding(image_format: ImageFormat) -> Iterator[None]:
    """Turn any decoder failure into ``CorruptImage``."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise DecodingLimit(f"{exc} (max_pixels)", "max_pixels") from None
    except DECODE_ERRORS_WITH_ZLIB as exc:
        raise CorruptImage(
            f"the {image_format.value} data is corrupt or truncated: {_one_line(exc)}"
        ) from None


def _decode_all_frames(image: ImageFile.ImageFile) -> None:
    """Decode every pixel of every frame. A JPEG is decoded at 1/8 scale: libjpeg still entropy-decodes
    every scan (so truncation and broken Huffman data are caught) but skips most of the IDCT work."""
    if image.format == "JPEG":
        image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))
    for frame in ImageSequence.Iterator(image):
        frame.load()


def _load_first_frame(image: ImageFile.ImageFile, size: Size) -> int:
    """Decode the first frame, for JPEG no larger than needed to cover ``size``; return the EXIF
    orientation (1 when absent or unreadable).

    ``draft`` picks the strongest DCT scaling (1/2, 1/4, 1/8) that still covers the requested size, so
    it is asked for exactly the cover size: the DCT scaling is itself a good low-pass, and the resize
    applies ``REDUCING_GAP`` afterwards (asking for the cover size × the gap decodes at a weaker scale
    for the same output)."""
    if image.format == "JPEG":
        target = _stored_size(size, _orientation(image))
        scale = max(target[0] / image.width, target[1] / image.height)
        image.draft(None, (max(1, math.ceil(image.width * scale)), max(1, math.ceil(image.height * scale))))
    image.load()
    return _orientation(image)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation; a broken EXIF block means no rotation rather than a failed request."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # any parser failure on untrusted EXIF
        log.info("ignoring an unreadable EXIF block", exc_info=True)
        return 1
    return orientation if orientation in _TRANSPOSITIONS else 1


def _colour_space(mode: str) -> str:
    """The colour space an ICC profile must describe for pixels in ``mode``: GRAY, CMYK or RGB."""
    if mode in _GREY_MODES:
        return "GRAY"
    return "CMYK" if mode == "CMYK" else "RGB"


def _stored_size(size: Size, orientation: int) -> tuple[int, int]:
    """The target size in the file's stored (unrotated) orientation."""
    if orientation in _SWAPS_AXES:
        return size.height, size.width
    return size.width, size.height


def _working_copy(image: Image.Image) -> Image.Image:
    """The image in L, LA, RGB or RGBA: the modes that resample and convert to every output."""
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" in image.info:
        # A colour key (PNG tRNS) becomes a real alpha channel, which every output format can take.
        return image.convert("LA" if mode == "L" else "RGBA")
    if mode in ("L", "LA", "RGB", "RGBA"):
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


def _cover(image: Image.Image, size: Size, orientation: int) -> Image.Image:
    """Scale ``image`` to cover ``size`` once oriented, centre-crop to it, then orient it. A centred
    crop commutes with the EXIF transpositions, so the (cheap) transposition is done on the result."""
    target = _stored_size(size, orientation)
    box = _centred_box(image.size, target)
    result = image.resize(target, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
    method = _TRANSPOSITIONS.get(orientation)
    return result if method is None else result.transpose(method)


def _centred_box(source: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest box of ``target``'s aspect ratio centred in ``source`` (``ImageOps.fit``, 0.5/0.5)."""
    width, height = source
    if width * target[1] > height * target[0]:  # source is wider: crop the sides
        crop_width = height * target[0] / target[1]
        return (width - crop_width) / 2, 0.0, (width + crop_width) / 2, float(height)
    crop_height = width * target[1] / target[0]
    return 0.0, (height - crop_height) / 2, float(width), (height + crop_height) / 2


def _for_output(image: Image.Image, image_format: ImageFormat) -> Image.Image:
    """Convert a working-mode image (L, LA, RGB, RGBA) to what ``image_format`` can store."""
    has_alpha = image.mode in ("LA", "RGBA")
    if image_format is ImageFormat.JPEG:
        return _flatten(image) if has_alpha else image
    if image_format is ImageFormat.WEBP:
        return image.convert("RGBA" if has_alpha else "RGB") if image.mode in ("L", "LA") else image
    if image_format is ImageFormat.GIF:
        return _palette(image)
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """Composite an image with alpha onto white."""
    base_mode = image.mode[:-1]
    background = Image.new(base_mode, image.size, (WHITE,) * len(base_mode))
    background.paste(image.convert(base_mode), mask=image.getchannel("A"))
    return background


_TRANSPARENT = 255


def _palette(image: Image.Image) -> Image.Image:
    """A GIF-ready palette image; pixels under half opacity become the transparent index."""
    if image.mode == "L":
        return image
    opaque = image.convert("RGB").quantize(colors=255 if "A" in image.getbands() else 256)
    if "A" in image.getbands():
        clear = image.getchannel("A").point(lambda alpha: 255 if alpha < 128 else 0)
        opaque.paste(_TRANSPARENT, mask=clear)
        opaque.info["transparency"] = _TRANSPARENT
    return opaque
