"""The HEIF/AVIF container scan (``pymager.adapters.isobmff``) against hostile files built in code: each
limit refuses, naming itself, before libheif or libavif sees the file; truncated and garbage boxes end
the scan quietly and the decoder's failure is a ``CorruptImage``; real Pillow and pillow-heif files pass.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest
from PIL import Image

from pymager.adapters.container import check_container
from pymager.adapters.pillow import PillowProcessor
from pymager.domain import DecodeLimits, ImageFormat
from pymager.errors import CorruptImage, DecodingLimit, UnsupportedImage
from tests import images
from tests.integration.conftest import WriteFile, identify
from tests.integration.test_pillow_limits import forbid_pixel_decoding


def _exif(size: int) -> bytes:
    """EXIF of about ``size`` bytes (an image description that long)."""
    exif = Image.Exif()
    exif[0x010E] = "x" * size
    return exif.tobytes()


def _xmp(size: int) -> bytes:
    return b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * size + b"</x:xmpmeta>"


def _icc(size: int) -> bytes:
    return images.rgb_profile(images.SRGB, padding=size)


def _with_size_field(whole: bytes, size: int) -> bytes:
    """The box ``whole`` with its 32-bit size field set to ``size`` (0: to the end of the file)."""
    return struct.pack(">I", size) + whole[4:]


def _with_largesize(whole: bytes, largesize: int | None = None) -> bytes:
    """The box ``whole`` with a 64-bit size (``largesize``, by default its true size)."""
    body = whole[8:]
    size = 16 + len(body) if largesize is None else largesize
    return struct.pack(">I4sQ", 1, whole[4:8], size) + body


def _ftyp(brand: bytes = b"heic") -> bytes:
    return images.box(b"ftyp", brand, b"\0\0\0\0", b"mif1", brand)


def _meta(*children: bytes) -> bytes:
    return images.box(b"meta", *children, version=0)


def _properties(*properties: bytes) -> bytes:
    return images.box(b"iprp", images.box(b"ipco", *properties))


def _icc_property(profile: bytes) -> bytes:
    return images.box(b"colr", b"prof", profile)


def _metadata_file(exif: int, xmp: int, icc: int, *, in_idat: bool = False) -> bytes:
    """A HEIF whose Exif item has ``exif`` bytes (in ``mdat``, or in ``idat``), its XMP item ``xmp``
    and its ICC profile ``icc`` (``colr`` payload after the colour type)."""
    items = images.heif_items(b"hvc1", b"Exif", b"mime")
    properties = _properties(images.ispe(64, 64), _icc_property(b"p" * icc))
    if in_idat:
        idat = images.box(b"idat", b"e" * exif + b"m" * xmp)
        extents = images.heif_locations((2, 1, [(0, exif)]), (3, 1, [(exif, xmp)]))
        return images.heif_file(items, properties, idat, extents)

    # The mdat follows a meta box of fixed size: place it, then point the extents into it.
    def build(mdat_at: int) -> bytes:
        extents = images.heif_locations((2, 0, [(mdat_at + 8, exif)]), (3, 0, [(mdat_at + 8 + exif, xmp)]))
        mdat = images.box(b"mdat", b"e" * exif + b"m" * xmp)
        return images.heif_file(items, properties, extents, after=mdat)

    head = build(0)
    return build(len(head) - 8 - exif - xmp)


REAL: dict[str, tuple[Callable[[], bytes], ImageFormat, bool, bool]] = {
    # name: (make, format, animated, alpha)
    "avif": (images.avif, ImageFormat.AVIF, False, False),
    "avif-alpha": (lambda: images.avif(mode="RGBA"), ImageFormat.AVIF, False, True),
    "avif-sequence": (lambda: images.avif(frames=3), ImageFormat.AVIF, True, False),
    "avif-sequence-alpha": (lambda: images.avif(mode="RGBA", frames=3), ImageFormat.AVIF, True, True),
    "avif-metadata": (
        lambda: images.avif(exif=_exif(3000), xmp=_xmp(3000), icc_profile=_icc(3000)),
        ImageFormat.AVIF,
        False,
        False,
    ),
    "heic": (images.heic, ImageFormat.HEIF, False, False),
    "heic-alpha": (lambda: images.heic(mode="RGBA"), ImageFormat.HEIF, False, True),
    "heic-grid": (lambda: images.heic(160, 120, tile=64), ImageFormat.HEIF, False, False),
    "heic-metadata": (
        lambda: images.heic(exif=_exif(3000), xmp=_xmp(3000), icc_profile=_icc(3000)),
        ImageFormat.HEIF,
        False,
        False,
    ),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_scan_passes_real_avif_and_heic_files(write: WriteFile, name: str) -> None:
    make, image_format, animated, alpha = REAL[name]
    data = make()
    check_container(data, DecodeLimits())
    info = identify(PillowProcessor(), write(data))
    assert (info.format, info.traits.animated, info.traits.alpha) == (image_format, animated, alpha)


def _grid(**patch: bytes) -> bytes:
    """A real 2x3 grid HEIC with its ImageGrid data (in ``idat``) patched at byte offsets."""
    data = images.heic(160, 120, tile=64)
    for at, value in patch.items():
        data = images.isobmff_patch(data, b"idat", int(at.removeprefix("at")), value)
    return data


def _sequence(width: int = 40, height: int = 30, frames: int | None = None) -> bytes:
    """A real 3-frame AVIF sequence whose track header declares ``width`` x ``height`` and whose
    sample size table declares ``frames``."""
    data = images.isobmff_patch(
        images.avif(frames=3), b"tkhd", 88, struct.pack(">II", width << 16, height << 16)
    )
    return data if frames is None else images.isobmff_patch(data, b"stsz", 8, struct.pack(">I", frames))


def _overlay(overlay: bytes) -> bytes:
    """A HEIF whose item 1 is an overlay of the ImageOverlay data ``overlay`` (in ``idat``)."""
    location = images.heif_locations((1, 1, [(0, len(overlay))]))
    return images.heif_file(images.heif_items(b"iovl", b"hvc1"), images.box(b"idat", overlay), location)


_HUGE_ISPE = struct.pack(">II", 100_000, 100_000)
_LONG_ISPE = struct.pack(">II", 30_000, 10)
_HEIC_EXIF = images.heic(exif=_exif(5000))

REFUSED: dict[str, tuple[Callable[[], bytes], dict[str, int], str, str]] = {
    # name: (make, limits, the limit named, detail)
    "avif-ispe-10-gigapixels": (
        lambda: images.isobmff_patch(images.avif(), b"ispe", 4, _HUGE_ISPE),
        {},
        "max_pixels",
        "100000x100000 = 10000000000 pixels",
    ),
    "heic-ispe-10-gigapixels": (
        lambda: images.isobmff_patch(images.heic(), b"ispe", 4, _HUGE_ISPE),
        {},
        "max_pixels",
        "100000x100000",
    ),
    "avif-ispe-long-side": (
        lambda: images.isobmff_patch(images.avif(), b"ispe", 4, _LONG_ISPE),
        {},
        "max_image_side",
        "30000x10",
    ),
    "heic-ispe-long-side": (
        lambda: images.isobmff_patch(images.heic(), b"ispe", 4, _LONG_ISPE),
        {},
        "max_image_side",
        "30000x10",
    ),
    "heic-grid-ispe-over-pixels": (
        lambda: images.isobmff_patch(images.heic(160, 120, tile=64), b"ispe", 4, _HUGE_ISPE, nth=0),
        {},
        "max_pixels",
        "100000x100000",
    ),
    "heic-grid-output-over-pixels-under-a-lying-ispe": (
        lambda: _grid(at4=struct.pack(">HH", 10_000, 10_000)),
        {},
        "max_pixels",
        "10000x10000",
    ),
    "heic-grid-32-bit-output-over-side": (
        lambda: images.heif_file(
            images.heif_items(b"grid"),
            images.box(b"idat", struct.pack(">BBBBII", 0, 1, 0, 0, 30_000, 100)),
            images.heif_locations((1, 1, [(0, 12)])),
        ),
        {},
        "max_image_side",
        "30000x100",
    ),
    "heif-overlay-canvas-over-pixels": (
        lambda: _overlay(struct.pack(">BB4HHH", 0, 0, 0, 0, 0, 0, 10_000, 10_000)),
        {},
        "max_pixels",
        "10000x10000",
    ),
    "heif-overlay-32-bit-canvas-over-side": (
        lambda: _overlay(struct.pack(">BB4HII", 0, 1, 0, 0, 0, 0, 30_000, 100)),
        {},
        "max_image_side",
        "30000x100",
    ),
    "heic-grid-65536-tiles": (
        lambda: _grid(at2=b"\xff\xff"),
        {},
        "max_frames",
        r"65536 grid tiles \(256x256\)",
    ),
    "heic-1001-items": (
        lambda: images.heif_file(images.heif_items(*[b"hvc1"] * 1001)),
        {},
        "max_frames",
        r"1001 items \(pictures, tiles, metadata\)",
    ),
    "heic-iinf-declares-65535-items": (
        lambda: images.isobmff_patch(images.heic(), b"iinf", 4, b"\xff\xff"),
        {},
        "max_frames",
        "65535 items",
    ),
    "heic-items-over-max-frames": (
        lambda: images.heic(exif=_exif(100), xmp=_xmp(100)),
        {"max_frames": 2},
        "max_frames",
        "3 items",
    ),
    "avif-exif": (
        lambda: images.avif(exif=_exif(5000)),
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "avif-xmp": (
        lambda: images.avif(xmp=_xmp(5000)),
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "avif-icc": (
        lambda: images.avif(icc_profile=_icc(5000)),
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "heic-exif": (
        lambda: _HEIC_EXIF,
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "heic-xmp": (
        lambda: images.heic(xmp=_xmp(5000)),
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "heic-icc": (
        lambda: images.heic(icc_profile=_icc(5000)),
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "heif-exif-in-idat": (
        lambda: _metadata_file(5000, 0, 0, in_idat=True),
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "heif-icc-and-xmp-together": (
        lambda: _metadata_file(0, 2100, 2100),
        {"max_metadata_bytes": 4096},
        "max_metadata_bytes",
        "bytes of metadata",
    ),
    "avif-sequence-over-max-frames": (
        lambda: images.avif(frames=3),
        {"max_frames": 2},
        "max_frames",
        "3 frames",
    ),
    "avif-sequence-declares-100000-frames": (
        lambda: _sequence(frames=100_000),
        {},
        "max_frames",
        "100000 frames",
    ),
    "avif-sequence-stts-declares-5000-frames": (
        lambda: images.isobmff_patch(images.avif(frames=3), b"stts", 8, struct.pack(">I", 5000)),
        {},
        "max_frames",
        "5000 frames",
    ),
    "avif-sequence-animation-pixels": (
        lambda: images.avif(frames=3),
        {"max_animation_pixels": 3599},
        "max_animation_pixels",
        "3 frames of 40x30",
    ),
    "avif-sequence-track-of-100-4-megapixel-frames": (
        lambda: _sequence(2000, 2000, frames=100),
        {},
        "max_animation_pixels",
        "100 frames of 2000x2000",
    ),
    "avif-sequence-track-header-10-gigapixels": (
        lambda: _sequence(65_535, 65_535),
        {},
        "max_pixels",
        "65535x65535",
    ),
    "heif-meta-of-size-0-is-followed-to-the-end": (
        lambda: _ftyp() + _with_size_field(_meta(_properties(images.ispe(100_000, 100_000))), 0),
        {},
        "max_pixels",
        "100000x100000",
    ),
    "heif-meta-of-largesize-is-followed": (
        lambda: _ftyp() + _with_largesize(_meta(_properties(images.ispe(100_000, 100_000)))),
        {},
        "max_pixels",
        "100000x100000",
    ),
    "heif-brand-only-compatible": (
        lambda: images.box(b"ftyp", b"zzzz\0\0\0\0avif") + _meta(_properties(images.ispe(100_000, 100_000))),
        {},
        "max_pixels",
        "100000x100000",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_scan_refuses_a_hostile_header_naming_the_limit(name: str) -> None:
    make, limits, limit, detail = REFUSED[name]
    with pytest.raises(DecodingLimit, match=detail) as refused:
        check_container(make(), DecodeLimits(**limits))
    assert refused.value.limit == limit
    assert limit in refused.value.detail


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_identify_refuses_a_hostile_header_before_decoding_pixels(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    make, limits, limit, _ = REFUSED[name]
    path = write(make())  # made before decoding is forbidden: pillow-heif decodes to encode
    forbid_pixel_decoding(monkeypatch)
    with pytest.raises(DecodingLimit) as refused:
        identify(PillowProcessor(limits=DecodeLimits(**limits)), path)
    assert refused.value.limit == limit


def test_scan_counts_exactly_the_metadata_bytes_present() -> None:
    """Exif and XMP extents (in ``mdat`` or ``idat``) and the ICC profile: all counted, nothing else."""
    for in_idat in (False, True):
        data = _metadata_file(1000, 300, 200, in_idat=in_idat)
        check_container(data, DecodeLimits(max_metadata_bytes=1500))
        with pytest.raises(DecodingLimit, match="max_metadata_bytes"):
            check_container(data, DecodeLimits(max_metadata_bytes=1499))


def test_an_item_placed_past_the_end_of_the_file_is_truncated_whatever_its_type() -> None:
    """An extent declared past the end: the file was cut short (or lies), and libheif would draw what
    it has of a grid; so it is corrupt before any limit is counted."""
    data = images.heif_file(
        images.heif_items(b"hvc1", b"Exif"), images.heif_locations((2, 0, [(10, 1 << 30)]))
    )
    with pytest.raises(CorruptImage, match="item 2 ends past the end of the file"):
        check_container(data, DecodeLimits(max_metadata_bytes=len(data)))


def test_scan_accepts_real_files_at_each_limit() -> None:
    sequence = images.avif(frames=3)
    check_container(sequence, DecodeLimits(max_frames=3, max_animation_pixels=3 * 40 * 30))
    check_container(images.heic(160, 120, tile=64), DecodeLimits(max_frames=7))  # 1 grid + 6 tiles
    check_container(images.heic(), DecodeLimits(max_pixels=64 * 64, max_image_side=64))  # coded 64x64


def test_scan_ignores_a_sound_track() -> None:
    """Only picture tracks are animations: a sound track's sample entries hold no picture size."""
    data = images.avif(frames=3)
    sound = images.isobmff_patch(data, b"hdlr", 8, b"soun", nth=1)  # the track's handler (0: meta's)
    with pytest.raises(DecodingLimit):
        check_container(data, DecodeLimits(max_frames=2))
    check_container(sound, DecodeLimits(max_frames=2))


MALFORMED: dict[str, Callable[[], bytes]] = {
    "ftyp-only": lambda: _ftyp(),
    "ftyp-cut-short": lambda: _ftyp()[:14],
    "child-of-size-3": lambda: _ftyp() + _meta(b"\0\0\0\x03ispe" + b"\0" * 12),
    "child-past-its-parent": lambda: _ftyp() + _meta(_with_size_field(images.ispe(1, 1), 1 << 20)),
    "child-of-size-0-in-ipco": lambda: _ftyp() + _meta(_properties(_with_size_field(images.ispe(9, 9), 0))),
    "largesize-past-the-file": lambda: _ftyp() + _with_largesize(_meta(), (1 << 64) - 1),
    "largesize-under-its-header": lambda: _ftyp() + _with_largesize(_meta(), 8),
    "largesize-cut-short": lambda: _ftyp() + b"\0\0\0\x01meta\0\0",
    "size-0-ftyp": lambda: _with_size_field(_ftyp(), 0) + _meta(),
    "garbage-sizes": lambda: _ftyp() + random.Random(3).randbytes(4096),
    "hundred-thousand-empty-boxes": lambda: _ftyp() + _meta(images.box(b"free") * 100_000),
    "iinf-declares-items-it-lacks": lambda: images.heif_file(
        images.isobmff_patch(images.heif_items(b"Exif"), b"iinf", 4, b"\x03\xe8")
    ),
    "iloc-declares-items-it-lacks": lambda: images.heif_file(images.heif_locations()[:-2] + b"\xff\xff"),
    "iloc-of-16-byte-fields": lambda: images.heif_file(
        images.isobmff_patch(images.heif_locations(), b"iloc", 4, b"\xff")
    ),
    "infe-cut-short": lambda: images.heif_file(
        images.box(b"iinf", b"\0\x01", images.box(b"infe", version=2), version=0)
    ),
    "ispe-cut-short": lambda: images.heif_file(_properties(images.box(b"ispe", b"\0\0", version=0))),
    "grid-data-cut-short": lambda: images.heif_file(
        images.heif_items(b"grid"), images.box(b"idat", b"\0\0"), images.heif_locations((1, 1, [(0, 2)]))
    ),
    "stts-declares-4-billion-entries": lambda: images.isobmff_patch(
        images.avif(frames=3), b"stts", 4, b"\xff\xff\xff\xff"
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_scan_ends_quietly_on_a_box_it_cannot_follow(write: WriteFile, name: str) -> None:
    data = MALFORMED[name]()
    check_container(data, DecodeLimits())
    with pytest.raises((CorruptImage, UnsupportedImage)):
        identify(PillowProcessor(), write(data))


TRUNCATED: dict[str, Callable[[], bytes]] = {
    "avif": images.avif,
    "avif-alpha": lambda: images.avif(mode="RGBA"),
    "avif-sequence": lambda: images.avif(frames=3),
    "heic": images.heic,
    "heic-alpha": lambda: images.heic(mode="RGBA"),
    "heic-grid": lambda: images.heic(160, 120, tile=64),
}


FRACTIONS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]


@pytest.mark.parametrize(("name", "fraction"), [(n, f) for n in sorted(TRUNCATED) for f in FRACTIONS])
def test_truncated_avif_and_heic_are_corrupt(write: WriteFile, name: str, fraction: float) -> None:
    """Found by the decoder, or by the scan where an item's data would lie past the end (libheif
    draws a grid with its last tiles cut off)."""
    data = TRUNCATED[name]()
    cut = data[: max(12, int(len(data) * fraction))]
    with pytest.raises(CorruptImage, match="data is corrupt or truncated"):
        identify(PillowProcessor(), write(cut))


@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_scan_of_mutated_files_raises_nothing_but_a_limit(name: str) -> None:
    """Bytes flipped anywhere in a real file: the scan refuses, or passes, and always ends."""
    data = TRUNCATED[name]()
    rng = random.Random(name)
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        refused = _refusal(bytes(mutated))
        assert refused is None or isinstance(refused, CorruptImage) or refused.limit in refused.detail


def _refusal(data: bytes) -> DecodingLimit | CorruptImage | None:
    """What the scan refuses ``data`` with, under the default limits (``None``: it passes)."""
    try:
        check_container(data, DecodeLimits())
    except (DecodingLimit, CorruptImage) as refused:
        return refused
    return None


def _overwritten_av1(data: bytes) -> bytes:
    """``data`` with the start of its AV1 data (the mdat payload) overwritten."""
    body = next(body for kind, body, _ in images.isobmff_boxes(data) if kind == b"mdat")
    return data[:body] + b"\xff" * 8 + data[body + 8 :]


# Files the scan passes and the decoder fails on, with its own errors: each a CorruptImage.
DECODER_FAILURES: dict[str, tuple[Callable[[], bytes], dict[str, int], str]] = {
    # libavif's RuntimeError
    "avif-av1-data-overwritten": (
        lambda: _overwritten_av1(images.avif()),
        {},
        "Decoding of color planes failed",
    ),
    # Pillow's AVIF plugin divides each frame's timestamp by the track's timescale
    "avif-sequence-timescale-0": (
        lambda: images.isobmff_patch(images.avif(frames=3), b"mdhd", 20, b"\0\0\0\0"),
        {},
        "division by zero",
    ),
    # libheif's own pixel limit (2^30), reached when max_pixels is set above it: a RuntimeError
    "heic-over-libheif-security-limit": (
        lambda: images.isobmff_patch(images.heic(), b"ispe", 4, _HUGE_ISPE),
        {"max_pixels": 10**11, "max_image_side": 10**6},
        "Security limit exceeded",
    ),
}


@pytest.mark.parametrize("name", sorted(DECODER_FAILURES))
def test_identify_turns_decoder_errors_into_corrupt_image(write: WriteFile, name: str) -> None:
    make, limits, detail = DECODER_FAILURES[name]
    data = make()
    check_container(data, DecodeLimits(**limits))
    with pytest.raises(CorruptImage, match=detail):
        identify(PillowProcessor(limits=DecodeLimits(**limits)), write(data))
