"""The decoding limits of the Pillow adapter: every one refuses before a pixel is decoded, names itself,
and lets through what is at the limit."""

from __future__ import annotations

import dataclasses
import io
import mmap
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pymager.adapters import container
from pymager.adapters.container import check_container
from pymager.adapters.pillow import PillowProcessor
from pymager.domain import DecodeLimits, ImageFormat, Mode, Rendition, Size
from pymager.errors import DecodingLimit, UnsupportedImage
from tests import images
from tests.integration.conftest import WriteFile, identify


def forbid_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, fail the test if any decoder is asked for pixels."""

    def refuse(self: Image.Image, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pixel was decoded before the limits were checked")

    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", refuse)


REFUSED: dict[str, tuple[Callable[[], bytes], dict[str, int], str]] = {
    "png-pixels": (lambda: images.png_flood(8_000, 7_000), {}, r"56000000 pixels.*\(max_pixels\)"),
    "png-side": (lambda: images.png_flood(20_001, 10), {}, r"20001x10.*\(max_image_side\)"),
    "jpeg-pixels": (lambda: images.jpeg_flood(65_000, 65_000), {}, r"\(max_pixels\)"),
    "jpeg-side": (lambda: images.jpeg_flood(100, 300), {"max_image_side": 299}, r"\(max_image_side\)"),
    "gif-screen": (lambda: images.gif_flood((65_535, 65_535)), {}, r"\(max_pixels\)"),
    "gif-frame-grows-canvas": (
        lambda: images.gif_flood((10, 10), frame_size=(20_000, 3_000)),
        {},
        r"20000x3000 = 60000000 pixels",
    ),
    "webp-canvas": (lambda: images.webp_flood(16_384, 16_384), {}, r"\(max_pixels\)"),
    "gif-frames": (lambda: images.gif_flood(frames=11), {"max_frames": 10}, r"11 frames.*\(max_frames\)"),
    "apng-declared-frames": (lambda: images.apng_declaring(100_000), {}, r"100000 frames"),
    "webp-frames": (lambda: images.webp(8, 8, frames=2), {"max_frames": 1}, r"\(max_frames\)"),
    "gif-animation-pixels": (
        lambda: images.gif_flood((1_000, 1_000), frames=251),
        {},
        r"251 frames of 1000x1000.*\(max_animation_pixels\)",
    ),
    "jpeg-scans": (lambda: images.jpeg_with_scans(101), {}, r"more than 100 scans \(max_jpeg_scans\)"),
    "jpeg-thousands-of-scans": (lambda: images.jpeg_with_scans(5_000), {}, r"\(max_jpeg_scans\)"),
    "jpeg-comments": (lambda: images.jpeg_segments(0xFE, 70), {}, r"max_metadata_bytes"),
    "jpeg-app-segments": (
        lambda: images.jpeg_segments(0xE2, 3, 1000),
        {"max_metadata_bytes": 3013},
        "max_metadata_bytes",
    ),
    "png-text": (
        lambda: images.png_with_chunk(b"tEXt", b"k\x00" + b"v" * 5000),
        {"max_metadata_bytes": 4096},
        r"max_metadata_bytes",
    ),
    "png-unknown-chunk": (
        lambda: images.png_with_chunk(b"prVt", b"x" * 5000),
        {"max_metadata_bytes": 4096},
        r"max_metadata_bytes",
    ),
    "png-ztxt-bomb": (lambda: images.png_text_bomb(b"zTXt"), {}, r"max_metadata_bytes"),
    "png-itxt-bomb": (lambda: images.png_text_bomb(b"iTXt"), {}, r"max_metadata_bytes"),
    "png-iccp-bomb": (lambda: images.png_text_bomb(b"iCCP"), {}, r"max_metadata_bytes"),
    "webp-exif": (
        lambda: images.encode(Image.new("RGB", (8, 8)), "WEBP", exif=b"Exif\x00\x00" + b"\x00" * 5000),
        {"max_metadata_bytes": 4096},
        r"max_metadata_bytes",
    ),
    "gif-comment": (
        lambda: images.encode(Image.new("P", (8, 8)), "GIF", comment=b"c" * 5000),
        {"max_metadata_bytes": 4096},
        r"max_metadata_bytes",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_identify_refuses_over_a_limit_before_decoding_pixels(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    make, limits, detail = REFUSED[name]
    path = write(make())
    forbid_pixel_decoding(monkeypatch)
    with pytest.raises(DecodingLimit, match=detail) as refused:
        identify(PillowProcessor(limits=DecodeLimits(**limits)), path)
    # The problem names the setting to raise: one of the limits, and the one the detail speaks of.
    assert refused.value.limit in {field.name for field in dataclasses.fields(DecodeLimits)}
    assert refused.value.limit in refused.value.detail


AT_THE_LIMIT: dict[str, tuple[Callable[[], bytes], dict[str, int]]] = {
    "side": (lambda: images.png(300, 10), {"max_image_side": 300}),
    "frames": (lambda: images.gif(8, 8, frames=10), {"max_frames": 10}),
    "animation-pixels": (lambda: images.gif(8, 8, frames=10), {"max_animation_pixels": 640}),
    "jpeg-scans": (lambda: images.jpeg_with_scans(100), {}),
    "jpeg-metadata": (lambda: images.jpeg_segments(0xE2, 3, 1000), {"max_metadata_bytes": 3014}),
    "icc-profile": (lambda: images.jpeg(icc=True), {}),
}


@pytest.mark.parametrize("name", sorted(AT_THE_LIMIT))
def test_identify_accepts_an_image_at_each_limit(write: WriteFile, name: str) -> None:
    make, limits = AT_THE_LIMIT[name]
    assert identify(PillowProcessor(limits=DecodeLimits(**limits)), write(make())).format in ImageFormat


def test_derive_checks_pixels_and_sides_from_the_header(write: WriteFile) -> None:
    """An original stored under looser limits is refused at derive time, not decoded."""
    path = write(images.png(300, 10))
    processor = PillowProcessor(limits=DecodeLimits(max_image_side=200))
    with open(path, "rb") as source, pytest.raises(DecodingLimit, match="max_image_side"):
        processor.derive(source, Rendition(Size(10, 10), Mode.FILL, ImageFormat.PNG), io.BytesIO())


def test_scan_counts_only_scans_outside_embedded_thumbnails() -> None:
    """An EXIF thumbnail is a JPEG with its own SOS markers, inside an APP1 segment: not counted."""
    thumbnail = images.jpeg(8, 8, progressive=True)
    exif = Image.Exif()
    exif[0x010E] = "x"
    data = images.encode(
        Image.new("RGB", (16, 16)), "JPEG", exif=b"Exif\x00\x00" + exif.tobytes() + thumbnail
    )
    assert data.count(b"\xff\xda") > 2
    check_container(data, DecodeLimits(max_jpeg_scans=1))  # the baseline JPEG itself has one scan
    progressive = images.jpeg(16, 16, progressive=True)
    with pytest.raises(DecodingLimit, match="max_jpeg_scans"):
        check_container(progressive, DecodeLimits(max_jpeg_scans=progressive.count(b"\xff\xda") - 1))


def test_scan_leaves_garbage_to_the_decoder() -> None:
    """The scan only counts: structures it cannot follow are the decoder's to judge."""
    for data in (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n\x00", b"GIF89a", b"RIFF\xff\xff\xff\xffWEBPVP8X"):
        check_container(data, DecodeLimits())


HOSTILE = [
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    b"\xc5\xd0\xd3\xc6" + b"\x00" * 28,  # binary EPS header (Ghostscript bait)
    b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n",
    b"8BPS\x00\x01" + b"\x00" * 20,
    b"SIMPLE  =                    T" + b" " * 50,  # FITS
    b"DDS |" + b"\x00" * 124,
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",  # JPEG 2000
    images.tiff(),
]


@pytest.mark.parametrize(
    "data", HOSTILE, ids=["eps", "eps-binary", "pdf", "psd", "fits", "dds", "jp2", "tiff"]
)
def test_no_other_decoder_and_no_subprocess_is_ever_reached(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    def no_subprocess(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    path = write(data)
    with pytest.raises(UnsupportedImage):
        identify(PillowProcessor(), path)
    with open(path, "rb") as source, pytest.raises(UnsupportedImage):
        PillowProcessor().derive(source, Rendition(Size(8, 8), Mode.FILL, ImageFormat.PNG), io.BytesIO())


def _marker_positions(data: bytes) -> list[int]:
    return [match.start() for match in container._JPEG_NEXT_MARKER.finditer(data)]


def test_windowed_marker_search_finds_what_a_whole_file_search_finds(tmp_path: Path) -> None:
    # A JPEG several windows long, with a marker placed to straddle a window boundary.
    window = container._WINDOW
    noise = Image.frombytes("RGB", (1400, 1400), random.Random(7).randbytes(1400 * 1400 * 3))
    body = io.BytesIO()
    noise.save(body, "JPEG", quality=100, progressive=True)
    data = bytearray(body.getvalue())
    while len(data) < 2 * window + 4096:  # pad with entropy-like bytes before EOI
        data[-2:-2] = bytes(byte for byte in random.Random(len(data)).randbytes(65536) if byte != 0xFF)
    data[window - 1 : window + 1] = b"\xff\xc4"  # a marker across the first window edge
    path = tmp_path / "long.jpg"
    path.write_bytes(bytes(data))
    expected = _marker_positions(bytes(data))
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        found, pos = [], 0
        while (position := container._next_jpeg_marker(mapped, pos)) is not None:
            found.append(position)
            pos = position + 1
    assert window - 1 in expected
    assert found == expected
