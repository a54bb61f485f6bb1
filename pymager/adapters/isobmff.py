"""The container scan of HEIF and AVIF files (ISOBMFF boxes), before libheif or libavif sees them.

What a HEIF/AVIF header declares, and the limit it is checked against:

* every ``ispe`` property (the size of an image, a tile, an alpha plane, a thumbnail) and the output
  size of a ``grid`` or ``iovl`` (overlay) item, read from its data: ``max_pixels`` and
  ``max_image_side`` (libavif trusts a lying ``ispe`` and allocates what it says);
* the ``iinf`` item count and a grid's tile count: ``max_frames``. Each item is a picture (or a
  tile of one, or its metadata) that the decoder parses and may decode, as each frame of an
  animation is; a HEIC straight from a phone has well under a hundred;
* ``Exif`` and ``mime`` (XMP) item extents, and ``colr`` ICC profiles: ``max_metadata_bytes``,
  counting only the bytes present in the file;
* an image sequence's tracks (``moov/trak``): the ``tkhd`` and sample-entry sizes as any image, and
  the ``stsz``/``stts`` sample counts as the frames of an animation (``max_frames``,
  ``max_animation_pixels``).

Like the rest of the scan it counts, reading box headers and small fields (never a whole box of a
mapped file). A box it cannot follow (a size under its header, or past its parent) ends the scan
silently: the decoder then judges the file. One judgement it makes itself: an item whose data the
``iloc`` box places past the end of the file is ``CorruptImage`` (truncated), since libheif decodes a
grid with its last tiles missing.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pymager.domain import DecodeLimits
from pymager.errors import CorruptImage, DecodingLimit

Buffer = bytes | mmap.mmap

# The brands libavif (Pillow) and libheif (pillow-heif) open, as major or compatible brand.
BRANDS = frozenset(
    {
        b"avif",
        b"avis",
        b"heic",
        b"heix",
        b"heim",
        b"heis",
        b"hevc",
        b"hevx",
        b"hevm",
        b"hevs",
        b"mif1",
        b"msf1",
    }
)
_METADATA_ITEMS = frozenset({b"Exif", b"mime"})
_DERIVED_ITEMS = frozenset({b"grid", b"iovl"})  # pictures drawn from others, on a canvas they declare
_ICC_COLOUR_TYPES = frozenset({b"prof", b"rICC"})
_SAMPLE_TABLE_PATH = (b"minf", b"stbl")
_PICTURES = frozenset({b"pict", b"vide", b"auxv"})  # track handlers of colour and alpha pictures
_FTYP_READ = 4096  # the most of an ``ftyp`` box read for its brands
_TABLE_READ = 64 << 10  # ``stts`` entries are read this many bytes at a time


class Counter(Protocol):
    """What the scan needs of the container scan's counters (``container._Scan``)."""

    limits: DecodeLimits

    def add_metadata(self, count: int) -> None:
        """Count ``count`` bytes of metadata; raise ``DecodingLimit`` past the limit."""


class _Malformed(Exception):
    """A structure the scan cannot follow: the scan ends, and the decoder judges the file."""


class _Box(NamedTuple):
    kind: bytes
    body: int  # where the payload starts
    end: int


@dataclass
class _Track:
    width: int = 0
    height: int = 0
    frames: int = 0


def is_isobmff(data: Buffer) -> bool:
    """Whether ``data`` starts with an ``ftyp`` box naming a HEIF or AVIF brand (major or compatible)."""
    if bytes(data[4:8]) != b"ftyp":
        return False
    (size,) = struct.unpack(">I", data[0:4])
    ftyp = bytes(data[8 : min(len(data), max(size, 16), _FTYP_READ)])
    brands = {ftyp[at : at + 4] for at in range(0, len(ftyp) - 3, 4)}
    brands.discard(ftyp[4:8])  # the minor version, not a brand
    return not brands.isdisjoint(BRANDS)


def scan_isobmff(data: Buffer, counter: Counter) -> None:
    """Apply the limits to every ``meta`` and ``moov`` box at the top of ``data``."""
    try:
        for box in _boxes(data, 0, len(data)):
            if box.kind == b"meta":
                _scan_meta(data, box, counter)
            elif box.kind == b"moov":
                for trak in _children(data, box, b"trak"):
                    _scan_track(data, trak, counter.limits)
    except _Malformed:
        return


def _boxes(data: Buffer, start: int, end: int) -> Iterator[_Box]:
    """The boxes from ``start`` to ``end`` (a parent's payload; size 0 runs to ``end``)."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size, header = _uint(data, pos + 8, 8, end), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _Malformed
        yield _Box(kind, pos + header, pos + size)
        pos += size


def _children(data: Buffer, parent: _Box, kind: bytes, skip: int = 0) -> Iterator[_Box]:
    """The children of ``parent`` of ``kind`` (``skip``: bytes before the first child, as a FullBox's
    version and flags)."""
    return (box for box in _boxes(data, parent.body + skip, parent.end) if box.kind == kind)


def _uint(data: Buffer, pos: int, size: int, end: int) -> int:
    """The big-endian unsigned integer of ``size`` bytes (0 to 8) at ``pos``, which must end by ``end``."""
    if pos + size > end:
        raise _Malformed
    return int.from_bytes(data[pos : pos + size], "big")


def _scan_meta(data: Buffer, meta: _Box, counter: Counter) -> None:
    limits = counter.limits
    children: dict[bytes, _Box] = {}
    for box in _boxes(data, meta.body + 4, meta.end):  # a FullBox: version and flags first
        children.setdefault(box.kind, box)
    item_types = _item_types(data, children[b"iinf"], limits) if b"iinf" in children else {}
    if b"iprp" in children:
        for ipco in _children(data, children[b"iprp"], b"ipco"):
            _scan_properties(data, ipco, counter)
    if b"iloc" not in children:
        return
    idat = children.get(b"idat", _Box(b"idat", 0, 0))
    for item_id, method, extents in _locations(data, children[b"iloc"]):
        item_type = item_types.get(item_id)
        if method == 1:  # in the idat box
            base, end = idat.body, idat.end
        elif method == 0:  # in the file
            base, end = 0, len(data)
        else:  # made of other items: counted as those
            continue
        spans = [(base + offset, base + offset + length if length else end) for offset, length in extents]
        if method == 0 and any(stop > end for _, stop in spans):
            # The one judgement of corruption made here: libheif decodes a grid whose last tiles are
            # cut off, drawing what it has, so a truncated upload would be stored as a valid image.
            raise CorruptImage(
                f"the HEIF/AVIF data is corrupt or truncated: item {item_id} ends past the end of the file"
            )
        if item_type in _METADATA_ITEMS:
            counter.add_metadata(sum(max(0, min(stop, end) - start) for start, stop in spans))
        elif item_type in _DERIVED_ITEMS and spans:
            _check_canvas(data, item_type, spans[0][0], min(spans[0][1], end), limits)


def _item_types(data: Buffer, iinf: _Box, limits: DecodeLimits) -> dict[int, bytes]:
    """Check the item count; return the types of the items whose data the scan reads (metadata,
    grids, overlays)."""
    version = _uint(data, iinf.body, 1, iinf.end)
    count = _uint(data, iinf.body + 4, 2 if version == 0 else 4, iinf.end)
    _check_items(count, "items (pictures, tiles, metadata)", limits)
    types: dict[int, bytes] = {}
    start = iinf.body + (6 if version == 0 else 8)
    for index, infe in enumerate(_boxes(data, start, iinf.end)):
        if index >= count:
            break
        version = _uint(data, infe.body, 1, infe.end)
        if infe.kind != b"infe" or version < 2:  # before version 2 an item has no type
            continue
        id_size = 2 if version == 2 else 4
        item_id = _uint(data, infe.body + 4, id_size, infe.end)
        type_at = infe.body + 4 + id_size + 2  # after the protection index
        item_type = bytes(data[type_at : min(type_at + 4, infe.end)])
        if item_type in _METADATA_ITEMS or item_type in _DERIVED_ITEMS:
            types[item_id] = item_type
    return types


def _check_items(count: int, what: str, limits: DecodeLimits) -> None:
    if count > limits.max_frames:
        raise DecodingLimit(
            f"the file declares {count} {what}; at most {limits.max_frames} are accepted (max_frames)",
            "max_frames",
        )


def _scan_properties(data: Buffer, ipco: _Box, counter: Counter) -> None:
    for box in _boxes(data, ipco.body, ipco.end):
        if box.kind == b"ispe":  # a FullBox: version and flags, then width and height
            width, height = _uint(data, box.body + 4, 4, box.end), _uint(data, box.body + 8, 4, box.end)
            counter.limits.check_size(width, height)
        elif box.kind == b"colr" and bytes(data[box.body : box.body + 4]) in _ICC_COLOUR_TYPES:
            counter.add_metadata(box.end - box.body - 4)


def _locations(data: Buffer, iloc: _Box) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
    """Each item of the ``iloc`` box: its id, construction method (0: file, 1: idat, 2: other items)
    and extents (offset from the base, length; 0 runs to the end)."""
    end = iloc.end
    version = _uint(data, iloc.body, 1, end)
    sizes = _uint(data, iloc.body + 4, 2, end)
    offset_size, length_size, base_size = sizes >> 12, sizes >> 8 & 15, sizes >> 4 & 15
    index_size = sizes & 15 if version in (1, 2) else 0
    field = 2 if version < 2 else 4
    count = _uint(data, iloc.body + 6, field, end)
    pos = iloc.body + 6 + field
    for _ in range(count):
        item_id = _uint(data, pos, field, end)
        pos += field
        method = 0
        if version in (1, 2):
            method = _uint(data, pos, 2, end) & 15
            pos += 2
        base = _uint(data, pos + 2, base_size, end)  # after the data reference index
        extent_count = _uint(data, pos + 2 + base_size, 2, end)
        pos += 4 + base_size
        extents = []
        for _ in range(extent_count):
            pos += index_size
            offset = _uint(data, pos, offset_size, end)
            length = _uint(data, pos + offset_size, length_size, end)
            pos += offset_size + length_size
            extents.append((base + offset, length))
        yield item_id, method, extents


def _check_canvas(data: Buffer, kind: bytes, start: int, stop: int, limits: DecodeLimits) -> None:
    """Check a grid's tile count and a grid's or overlay's output size, from its ImageGrid or
    ImageOverlay data (version, flags: bit 0 for 32-bit sizes, then the rows and columns of a grid,
    or an overlay's four 16-bit fill values)."""
    flags = _uint(data, start + 1, 1, stop)
    at = start + 10
    if kind == b"grid":
        rows, columns = _uint(data, start + 2, 1, stop) + 1, _uint(data, start + 3, 1, stop) + 1
        _check_items(rows * columns, f"grid tiles ({rows}x{columns})", limits)
        at = start + 4
    field = 4 if flags & 1 else 2
    limits.check_size(_uint(data, at, field, stop), _uint(data, at + field, field, stop))


def _scan_track(data: Buffer, trak: _Box, limits: DecodeLimits) -> None:
    """Check a picture track's sizes, then its sample count as frames of that size (a sound or
    metadata track is no animation: its sample entries hold no picture size)."""
    track = _Track()
    for box in _boxes(data, trak.body, trak.end):
        if box.kind == b"tkhd":
            version = _uint(data, box.body, 1, box.end)
            at = box.body + (88 if version == 1 else 76)  # after the times, volume and matrix
            width, height = _uint(data, at, 4, box.end), _uint(data, at + 4, 4, box.end)
            _track_size(track, width >> 16, height >> 16, limits)  # 16.16 fixed point
        elif box.kind == b"mdia":
            handler = next(_children(data, box, b"hdlr"), None)  # FullBox, pre_defined, handler type
            if handler is None or bytes(data[handler.body + 8 : handler.body + 12]) not in _PICTURES:
                return
            for stbl in _descend(data, box, _SAMPLE_TABLE_PATH):
                _scan_sample_table(data, stbl, track, limits)
    limits.check_frames(track.frames, track.width, track.height)


def _track_size(track: _Track, width: int, height: int, limits: DecodeLimits) -> None:
    limits.check_size(width, height)
    track.width, track.height = max(track.width, width), max(track.height, height)


def _descend(data: Buffer, box: _Box, path: tuple[bytes, ...]) -> Iterator[_Box]:
    """The boxes at ``path`` under ``box``."""
    if not path:
        yield box
        return
    for child in _children(data, box, path[0]):
        yield from _descend(data, child, path[1:])


def _scan_sample_table(data: Buffer, stbl: _Box, track: _Track, limits: DecodeLimits) -> None:
    for box in _boxes(data, stbl.body, stbl.end):
        if box.kind == b"stsd":  # visual sample entries: 8 + 16 bytes, then width and height (u16)
            for entry in _boxes(data, box.body + 8, box.end):
                width, height = (_uint(data, entry.body + at, 2, entry.end) for at in (24, 26))
                _track_size(track, width, height, limits)
        elif box.kind == b"stsz":  # FullBox, the sample size, then the sample count
            track.frames = max(track.frames, _uint(data, box.body + 8, 4, box.end))
            limits.check_frames(track.frames, track.width, track.height)
        elif box.kind == b"stts":  # FullBox, an entry count, then (sample count, delta) pairs
            _count_timed_samples(data, box, track, limits)


def _count_timed_samples(data: Buffer, stts: _Box, track: _Track, limits: DecodeLimits) -> None:
    entries = _uint(data, stts.body + 4, 4, stts.end)
    pos, stop = stts.body + 8, min(stts.end, stts.body + 8 + 8 * entries)
    total = 0
    while pos + 8 <= stop:
        size = min(stop - pos, _TABLE_READ) // 8 * 8
        total += sum(count for count, _ in struct.iter_unpack(">II", data[pos : pos + size]))
        track.frames = max(track.frames, total)
        limits.check_frames(track.frames, track.width, track.height)
        pos += size
