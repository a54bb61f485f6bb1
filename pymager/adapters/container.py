"""Decoding limits checked on the raw container, before any decoder sees the file.

The scan walks the structure of a JPEG, PNG, GIF, WebP, HEIF or AVIF file (markers, chunks, blocks,
ISOBMFF boxes: ``pymager.adapters.isobmff``) without decompressing a pixel, and refuses, as
``DecodingLimit`` naming the limit, a file whose header declares too many pixels or too long a side
(every GIF frame, WebP canvas and HEIF/AVIF image or tile included), too many animation frames (or
HEIF/AVIF items) or decoded animation pixels, a progressive JPEG with too many scans, or too much
metadata (JPEG APPn/COM segments, PNG ancillary chunks counted decompressed, WebP EXIF/XMP/ICCP and
unknown chunks, GIF comment/application/text extensions, HEIF/AVIF Exif and XMP items and ICC profiles).

The scan only counts. A structure it cannot follow (truncation, garbage) ends the scan silently: the
decoder then judges the file, so the scan and the decoder never disagree about what "corrupt" means.
"""

from __future__ import annotations

import mmap
import re
import struct
import zlib

from pymager.adapters.isobmff import is_isobmff, scan_isobmff
from pymager.domain import DecodeLimits
from pymager.errors import DecodingLimit

Buffer = bytes | mmap.mmap

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0-7, SOI
# A marker after entropy-coded data: 0xFF not followed by a stuffed 0x00, a restart marker or a fill byte.
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_WINDOW = 4 << 20  # how much of a mapped file a scan keeps resident
_PNG_PIXEL_CHUNKS = frozenset({b"IDAT", b"fdAT"})
_PNG_COMPRESSED = frozenset({b"zTXt", b"iCCP"})
_WEBP_IMAGE_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"})
_GIF_METADATA_LABELS = frozenset({0x01, 0xFE, 0xFF})  # plain text, comment, application extensions


class _Scan:
    """Counters of one file's scan; each ``add_*`` raises as soon as a limit is passed."""

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self.metadata = 0
        self.scans = 0

    def add_metadata(self, count: int) -> None:
        self.metadata += count
        if self.metadata > self.limits.max_metadata_bytes:
            raise DecodingLimit(
                f"the image carries more than {self.limits.max_metadata_bytes} bytes of metadata "
                "(EXIF, XMP, ICC profile, comments, text); the limit is max_metadata_bytes",
                "max_metadata_bytes",
            )

    def add_scan(self) -> None:
        self.scans += 1
        if self.scans > self.limits.max_jpeg_scans:
            raise DecodingLimit(
                f"the progressive JPEG has more than {self.limits.max_jpeg_scans} scans (max_jpeg_scans)",
                "max_jpeg_scans",
            )

    def budget(self) -> int:
        """Metadata bytes still allowed."""
        return self.limits.max_metadata_bytes - self.metadata


def check_container(data: Buffer, limits: DecodeLimits) -> None:
    """Apply ``limits`` to ``data`` (a whole file, e.g. an ``mmap``) by its signature; a file of no
    accepted format is left to the decoder, which refuses it."""
    view = bytes(data[:12])
    if view.startswith(b"\xff\xd8"):
        _scan_jpeg(data, _Scan(limits))
    elif view.startswith(b"\x89PNG\r\n\x1a\n"):
        _scan_png(data, _Scan(limits))
    elif view.startswith((b"GIF87a", b"GIF89a")):
        _scan_gif(data, _Scan(limits))
    elif view.startswith(b"RIFF") and view[8:12] == b"WEBP":
        _scan_webp(data, _Scan(limits))
    elif is_isobmff(data):
        scan_isobmff(data, _Scan(limits))


def _scan_jpeg(data: Buffer, scan: _Scan) -> None:
    end = len(data)
    pos = 2
    while pos + 2 <= end:
        if data[pos] != 0xFF:  # garbage between segments: libjpeg skips to the next marker too
            found = _next_jpeg_marker(data, pos)
            if found is None:
                return
            pos = found
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xD9 or pos + 4 > end:  # EOI
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return
        body, segment_end = pos + 4, pos + 2 + length
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            scan.add_metadata(length - 2)
        elif marker in _JPEG_SOF and body + 5 <= end:
            height, width = struct.unpack(">HH", data[body + 1 : body + 5])
            scan.limits.check_size(width, height)
        elif marker == 0xDA:
            scan.add_scan()
            found = _next_jpeg_marker(data, segment_end)
            if found is None:
                return
            pos = found
            continue
        pos = segment_end


def _next_jpeg_marker(data: Buffer, pos: int) -> int | None:
    """Where the next JPEG marker starts at or after ``pos`` (``None`` if there is none), searched a
    window at a time so a mapped file is never resident in this process as a whole."""
    end = len(data)
    while pos < end:
        stop = min(end, pos + _WINDOW)
        found = _JPEG_NEXT_MARKER.search(data, pos, min(end, stop + 1))  # a marker may straddle
        if found is not None:
            return found.start()
        _forget(data, stop)
        pos = stop
    return None


def _forget(data: Buffer, upto: int) -> None:
    """Drop the pages of a mapped file before ``upto`` from this process's resident memory. They stay
    in the page cache, where the decoder reads them next; only this process's RSS stops counting them
    (otherwise a large upload's mapped pages count in the server's RSS while it is checked)."""
    if isinstance(data, mmap.mmap):
        length = upto - upto % mmap.PAGESIZE
        if length > 0:
            data.madvise(mmap.MADV_DONTNEED, 0, length)


def _scan_png(data: Buffer, scan: _Scan) -> None:
    end = len(data)
    pos = 8
    width = height = 0
    frames = 1
    while pos + 8 <= end:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body, body_end = pos + 8, pos + 8 + length
        if body_end > end:
            return
        if kind == b"IHDR" and length >= 8:
            width, height = struct.unpack(">II", data[body : body + 8])
            scan.limits.check_size(width, height)
        elif kind == b"acTL" and length >= 8:
            (frames,) = struct.unpack(">I", data[body : body + 4])
            scan.limits.check_frames(frames, width, height)
        elif kind == b"IEND":
            return
        elif kind not in _PNG_PIXEL_CHUNKS:
            size = length
            if (kind in _PNG_COMPRESSED or kind == b"iTXt") and length <= scan.budget():
                size = max(length, _png_inflated_size(kind, bytes(data[body:body_end]), scan))
            scan.add_metadata(size)
        pos = body_end + 4  # CRC


def _png_inflated_size(kind: bytes, chunk: bytes, scan: _Scan) -> int:
    """The decompressed size of a zTXt, iCCP or compressed iTXt chunk, inflating no more than the
    metadata budget allows (plus one byte, to know it is over)."""
    name_end = chunk.find(b"\0")
    if name_end < 0:
        return 0
    if kind == b"iTXt":
        if chunk[name_end + 1 : name_end + 2] != b"\x01":  # not compressed
            return 0
        language_end = chunk.find(b"\0", name_end + 3)
        keyword_end = chunk.find(b"\0", language_end + 1) if language_end >= 0 else -1
        if keyword_end < 0:
            return 0
        compressed = chunk[keyword_end + 1 :]
    else:
        compressed = chunk[name_end + 2 :]  # after the compression method byte
    try:
        return len(zlib.decompressobj().decompress(compressed, max(1, scan.budget() + 1)))
    except zlib.error:
        return 0  # the decoder reports (or ignores) a broken chunk


def _scan_gif(data: Buffer, scan: _Scan) -> None:
    end = len(data)
    if end < 13:
        return
    width, height, flags = struct.unpack("<HHB", data[6:11])
    scan.limits.check_size(width, height)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while pos < end:
        block = data[pos]
        if block == 0x21 and pos + 2 <= end:  # extension: label, then data sub-blocks
            label = data[pos + 1]
            pos, size = _skip_sub_blocks(data, pos + 2)
            if label in _GIF_METADATA_LABELS:
                scan.add_metadata(size)
        elif block == 0x2C and pos + 10 <= end:  # image descriptor: a frame
            left, top, frame_width, frame_height, local = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            scan.limits.check_size(width, height)  # Pillow grows the canvas to hold every frame
            frames += 1
            scan.limits.check_frames(frames, width, height)
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1  # + LZW minimum code size
            pos, _ = _skip_sub_blocks(data, pos)
        else:  # trailer, or a structure the decoder will judge
            return


def _skip_sub_blocks(data: Buffer, pos: int) -> tuple[int, int]:
    """Skip GIF data sub-blocks from ``pos``; return the position after the terminator and the size."""
    end = len(data)
    size = 0
    forget_at = pos + _WINDOW
    while pos < end:
        if pos >= forget_at:
            _forget(data, pos)
            forget_at = pos + _WINDOW
        length = data[pos]
        if length == 0:
            return pos + 1, size
        size += length
        pos += 1 + length
    return end, size


def _scan_webp(data: Buffer, scan: _Scan) -> None:
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    pos = 12
    width = height = 0
    frames = 0
    while pos + 8 <= end:
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        body = pos + 8
        if kind == b"VP8X" and body + 10 <= end:
            width, height = _u24(data, body + 4) + 1, _u24(data, body + 7) + 1
            scan.limits.check_size(width, height)
        elif kind == b"VP8 " and body + 10 <= end:
            width, height = (value & 0x3FFF for value in struct.unpack("<HH", data[body + 6 : body + 10]))
            scan.limits.check_size(width, height)
        elif kind == b"VP8L" and body + 5 <= end:
            (bits,) = struct.unpack("<I", data[body + 1 : body + 5])
            width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            scan.limits.check_size(width, height)
        elif kind == b"ANMF" and body + 12 <= end:
            scan.limits.check_size(_u24(data, body + 6) + 1, _u24(data, body + 9) + 1)
            frames += 1
            scan.limits.check_frames(frames, width, height)
        elif kind not in _WEBP_IMAGE_CHUNKS:
            scan.add_metadata(length)
        pos = body + length + (length & 1)


def _u24(data: Buffer, pos: int) -> int:
    low, high = struct.unpack("<HB", data[pos : pos + 3])
    return int(low | high << 16)
