"""Hostile input against a real server: no picture, request or upload hurts it, leaks data or leaves
anything behind. Every input is generated in code; every case checks the status, the problem body,
that no row, file or temporary file is left, and that the server is still healthy."""

from __future__ import annotations

import http.client
import io
import random
import socket
import struct
from collections.abc import Callable

import pytest
import requests
from PIL import Image

from tests import images
from tests.functional.conftest import (
    MAX_DIMENSION,
    MAX_UPLOAD_BYTES,
    Server,
    assert_problem,
    raw_post,
    upload,
)


@pytest.fixture
def target(server: Server) -> Server:
    """Any server: standalone, or behind Apache or nginx (which guard writes with their own credentials)."""
    return server


@pytest.fixture
def standalone(server: Server) -> Server:
    """The shared server when pymager itself answers every request: behind Apache or nginx, the front
    server answers some URL and raw-socket cases itself (httpd normalises ``%2e%2e``; both refuse
    ``%00`` and a request without Host, and ask for Basic auth)."""
    if server.behind_front:
        pytest.skip("the front server answers this case itself (NUL bytes, no Host, its own auth)")
    return server


def assert_healthy(server: Server) -> None:
    assert requests.get(server.url("/health"), timeout=10).status_code == 200


def _progressive_truncated() -> bytes:
    data = images.jpeg(image=images.gradient(300, 200), progressive=True)
    return data[: len(data) // 2]


def _damaged_png_crc() -> bytes:
    data = bytearray(images.png(64, 48))
    data[data.index(b"IEND") - 5] ^= 0xFF
    return bytes(data)


def _gif_truncated() -> bytes:
    data = images.gif(200, 150, frames=3)
    return data[: int(len(data) * 0.9)]


def _random(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _avif_sequence_declaring(width: int, height: int, frames: int) -> bytes:
    """A real AVIF sequence whose track header declares ``width`` x ``height`` (16.16 fixed point)
    and whose sample size table declares ``frames`` frames."""
    sized = struct.pack(">II", width << 16, height << 16)
    data = images.isobmff_patch(images.avif(frames=3), b"tkhd", 88, sized)
    return images.isobmff_patch(data, b"stsz", 8, struct.pack(">I", frames))


def _av1_overwritten() -> bytes:
    data = images.avif()
    body = next(body for kind, body, _ in images.isobmff_boxes(data) if kind == b"mdat")
    return data[:body] + b"\xff" * 8 + data[body + 8 :]


_HUGE_ISPE = struct.pack(">II", 100_000, 100_000)


MAX_PIXELS = r"at most 50000000 pixels are accepted \(max_pixels\)"
MAX_SIDE = r"at most 20000 pixels per side are accepted \(max_image_side\)"
CORRUPT = r"data is corrupt or truncated"
UNSUPPORTED = r"not an image in an accepted format \(JPEG, PNG, GIF, WebP, AVIF, HEIC\)"
# The problem types, each a 400.
LIMIT, BROKEN, NOT_IMAGE = "decoding-limit", "corrupt-image", "unsupported-image"

# (id, body generator, problem type, detail pattern): every one is a 400
UPLOADS: list[tuple[str, Callable[[], bytes], str, str]] = [
    # pixel floods: hand-made headers declaring huge images over a few bytes
    (
        "png-ihdr-10-gigapixels",
        lambda: images.png_flood(100_000, 100_000),
        LIMIT,
        "10000000000 pixels",
    ),
    ("png-ihdr-long-side", lambda: images.png_flood(30_000, 10), LIMIT, MAX_SIDE),
    ("jpeg-sof-3-gigapixels", lambda: images.jpeg_flood(60_000, 60_000), LIMIT, MAX_PIXELS),
    ("jpeg-sof-long-side", lambda: images.jpeg_flood(25_000, 100), LIMIT, MAX_SIDE),
    ("gif-screen-4-gigapixels", lambda: images.gif_flood((65_535, 65_535)), LIMIT, MAX_PIXELS),
    (
        "gif-frame-outgrows-screen",
        lambda: images.gif_flood((10, 10), frame_size=(20_000, 3_000)),
        LIMIT,
        MAX_PIXELS,
    ),
    ("webp-vp8x-canvas-flood", lambda: images.webp_flood(16_384, 16_384), LIMIT, MAX_PIXELS),
    # valid but huge: a few kilobytes that decode to more than max_pixels
    (
        "valid-png-56-megapixels",
        lambda: images.huge_valid_png(8_000, 7_000),
        LIMIT,
        "56000000 pixels",
    ),
    (
        "valid-jpeg-50.4-megapixels",
        lambda: images.huge_valid_jpeg(7_100, 7_100),
        LIMIT,
        MAX_PIXELS,
    ),
    # animations
    (
        "gif-1001-frames",
        lambda: images.gif_flood(frames=1_001),
        LIMIT,
        r"1001 frames.*\(max_frames\)",
    ),
    (
        "gif-251-frames-of-a-megapixel",
        lambda: images.gif_flood((1_000, 1_000), frames=251),
        LIMIT,
        r"\(max_animation_pixels\)",
    ),
    (
        "apng-declaring-100000-frames",
        lambda: images.apng_declaring(100_000),
        LIMIT,
        r"\(max_frames\)",
    ),
    # progressive JPEG scan bombs
    (
        "jpeg-5000-scans",
        lambda: images.jpeg_with_scans(5_000),
        LIMIT,
        r"100 scans \(max_jpeg_scans\)",
    ),
    ("jpeg-101-scans", lambda: images.jpeg_with_scans(101), LIMIT, r"\(max_jpeg_scans\)"),
    # metadata bombs: compressed chunks inflating to 64 MiB
    ("png-ztxt-bomb", lambda: images.png_text_bomb(b"zTXt"), LIMIT, "max_metadata_bytes"),
    ("png-itxt-bomb", lambda: images.png_text_bomb(b"iTXt"), LIMIT, "max_metadata_bytes"),
    ("png-iccp-bomb", lambda: images.png_text_bomb(b"iCCP"), LIMIT, "max_metadata_bytes"),
    # corrupt and truncated
    (
        "jpeg-truncated-half",
        lambda: images.jpeg(image=images.gradient(300, 200))[:3000],
        BROKEN,
        CORRUPT,
    ),
    (
        "jpeg-missing-last-bytes",
        lambda: images.jpeg(image=images.gradient(300, 200))[:-16],
        BROKEN,
        CORRUPT,
    ),
    ("jpeg-progressive-truncated", _progressive_truncated, BROKEN, CORRUPT),
    (
        "jpeg-soi-only",
        lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        BROKEN,
        "",
    ),
    ("png-truncated", lambda: images.png(100, 100)[:-60], BROKEN, CORRUPT),
    ("png-damaged-crc", _damaged_png_crc, BROKEN, CORRUPT),
    ("png-signature-only", lambda: b"\x89PNG\r\n\x1a\n", BROKEN, CORRUPT),
    ("gif-truncated-animation", _gif_truncated, BROKEN, CORRUPT),
    ("gif-header-only", lambda: b"GIF89a\x10\x00\x10\x00\x80\x00\x00", BROKEN, CORRUPT),
    (
        "webp-truncated",
        lambda: images.encode(images.gradient(200, 150), "WEBP", quality=80)[:400],
        BROKEN,
        CORRUPT,
    ),
    # garbage whose VP8 frame header happens to declare 9886x9998 pixels
    ("webp-riff-garbage", lambda: b"RIFF\x40\x00\x00\x00WEBPVP8 " + _random(7, 56), LIMIT, MAX_PIXELS),
    (
        "gif-javascript-polyglot",
        lambda: b"GIF89a/*\x00\x00*/=alert(document.cookie);//" + b"\x00" * 20,
        BROKEN,
        "",
    ),
    # not an accepted format, whatever the filename (photo.jpg) and part type (image/jpeg) say
    ("empty-file", lambda: b"", NOT_IMAGE, UNSUPPORTED),
    ("random-bytes", lambda: _random(1234, 4096), NOT_IMAGE, UNSUPPORTED),
    (
        "html-as-jpg",
        lambda: b"<!DOCTYPE html><html><script>alert(1)</script></html>",
        NOT_IMAGE,
        UNSUPPORTED,
    ),
    (
        "svg-as-jpg",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        NOT_IMAGE,
        UNSUPPORTED,
    ),
    (
        "eps-as-jpg",
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n(x) print\n",
        NOT_IMAGE,
        UNSUPPORTED,
    ),
    ("eps-binary-as-jpg", lambda: b"\xc5\xd0\xd3\xc6" + b"\x00" * 60, NOT_IMAGE, UNSUPPORTED),
    (
        "psd-as-jpg",
        lambda: b"8BPS\x00\x01" + b"\x00" * 6 + b"\x00\x03\x00\x00\x00\x0a" * 2,
        NOT_IMAGE,
        UNSUPPORTED,
    ),
    ("tiff-as-jpg", images.tiff, NOT_IMAGE, UNSUPPORTED),
    ("bmp-as-jpg", images.bmp, NOT_IMAGE, UNSUPPORTED),
    (
        "ico-as-jpg",
        lambda: images.encode(Image.new("RGB", (16, 16)), "ICO"),
        NOT_IMAGE,
        UNSUPPORTED,
    ),
    (
        "pdf-as-jpg",
        lambda: b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
        NOT_IMAGE,
        UNSUPPORTED,
    ),
    ("fits-as-jpg", lambda: b"SIMPLE  =                    T" + b" " * 50, NOT_IMAGE, UNSUPPORTED),
    ("dds-as-jpg", lambda: b"DDS |" + b"\x00" * 124, NOT_IMAGE, UNSUPPORTED),
    (
        "jpeg2000-as-jpg",
        lambda: b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 40,
        NOT_IMAGE,
        UNSUPPORTED,
    ),
    ("php-as-jpg", lambda: b"<?php system($_GET['c']); ?>", NOT_IMAGE, UNSUPPORTED),
    ("zip-as-jpg", lambda: b"PK\x03\x04" + b"\x00" * 60, NOT_IMAGE, UNSUPPORTED),
    ("jpeg-magic-then-html", lambda: b"\xff\xd8\xff<html><script>alert(1)</script>", BROKEN, ""),
    # HEIF and AVIF: real files whose boxes declare what the decoders must not be handed
    (
        "avif-ispe-10-gigapixels",
        lambda: images.isobmff_patch(images.avif(), b"ispe", 4, _HUGE_ISPE),
        LIMIT,
        "10000000000 pixels",
    ),
    (
        "heic-ispe-10-gigapixels",
        lambda: images.isobmff_patch(images.heic(), b"ispe", 4, _HUGE_ISPE),
        LIMIT,
        MAX_PIXELS,
    ),
    (
        "heic-ispe-long-side",
        lambda: images.isobmff_patch(images.heic(), b"ispe", 4, struct.pack(">II", 30_000, 10)),
        LIMIT,
        MAX_SIDE,
    ),
    (
        "heic-grid-output-100-megapixels",
        lambda: images.isobmff_patch(images.heic(160, 120, tile=64), b"idat", 4, b"\x27\x10\x27\x10"),
        LIMIT,
        MAX_PIXELS,
    ),
    (
        "heic-grid-of-65536-tiles",
        lambda: images.isobmff_patch(images.heic(160, 120, tile=64), b"idat", 2, b"\xff\xff"),
        LIMIT,
        r"65536 grid tiles.*\(max_frames\)",
    ),
    (
        "heic-1001-items",
        lambda: images.heif_file(images.heif_items(*[b"hvc1"] * 1001)),
        LIMIT,
        r"1001 items.*\(max_frames\)",
    ),
    (
        "avif-sequence-declaring-100000-frames",
        lambda: _avif_sequence_declaring(40, 30, 100_000),
        LIMIT,
        r"100000 frames.*\(max_frames\)",
    ),
    (
        "avif-sequence-100-frames-of-4-megapixels",
        lambda: _avif_sequence_declaring(2_000, 2_000, 100),
        LIMIT,
        r"\(max_animation_pixels\)",
    ),
    ("avif-truncated-half", lambda: images.avif(mode="RGBA")[:200], BROKEN, CORRUPT),
    ("avif-sequence-truncated", lambda: images.avif(frames=3)[:-40], BROKEN, CORRUPT),
    ("heic-truncated-half", lambda: images.heic(mode="RGBA")[:400], BROKEN, CORRUPT),
    ("avif-av1-data-overwritten", _av1_overwritten, BROKEN, CORRUPT),
    (
        "avif-sequence-timescale-0",
        lambda: images.isobmff_patch(images.avif(frames=3), b"mdhd", 20, b"\0\0\0\0"),
        BROKEN,
        CORRUPT,
    ),
    (
        "heic-ftyp-then-garbage",
        lambda: images.box(b"ftyp", b"heic\0\0\0\0mif1") + _random(5, 2048),
        BROKEN,
        CORRUPT,
    ),
]


@pytest.mark.parametrize(
    ("make", "problem", "detail"), [pytest.param(*case[1:], id=case[0]) for case in UPLOADS]
)
def test_hostile_upload_is_refused_and_leaves_nothing(
    target: Server, image_id: str, make: Callable[[], bytes], problem: str, detail: str
) -> None:
    data = make()
    assert len(data) < MAX_UPLOAD_BYTES
    response = upload(target, image_id, data)
    body = assert_problem(response, 400, detail, problem=problem)
    if problem == "decoding-limit":  # the setting to raise, named in the problem and its detail
        assert str(body["limit"]) in str(body["detail"])
    assert str(target.data_directory) not in response.text  # no server path leaks
    assert target.leaves_nothing(image_id)
    assert_healthy(target)


# -- ids and derived segments ---------------------------------------------------------------------

BAD_IDS = ["bad.id", "x" * 129, "%C3%A9t%C3%A9", "a%20b", "%2e%2e", "a;b", "a%00b", "~root", "a%5cb", "*"]


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_invalid_id_is_bad_request_on_every_method(standalone: Server, method: str, bad_id: str) -> None:
    files = {"file": ("a.jpg", images.jpeg())} if method == "POST" else None
    response = requests.request(
        method, standalone.url(f"/original/{bad_id}"), files=files, auth=standalone.auth, timeout=10
    )
    assert_problem(response, 400, r"image ids match \[A-Za-z0-9_-\]\{1,128\}")
    assert not standalone.temporary_files()
    assert_healthy(standalone)


DERIVED_SEGMENTS: list[tuple[str, int]] = [
    ("{id}-9999999999x1.jpg", 404),  # more than nine digits: outside the grammar
    (f"{{id}}-999999999x{MAX_DIMENSION}.jpg", 403),
    (f"{{id}}-{MAX_DIMENSION + 1}x{MAX_DIMENSION + 1}.webp", 403),
    ("{id}-1x1.JPG", 400),
    ("{id}-1x1.svg", 400),
    ("{id}-1x1.php", 400),
    ("{id}-1x1.jpg%00", 404),
    ("{id}-1x1.jpg.png", 404),
    ("{id}-0x0.jpg", 404),
    ("{id}--1x1.jpg", 404),
    ("{id}-1x1", 404),
    ("%2e%2e-1x1.jpg", 404),
    ("{id}-%EF%BC%91x1.jpg", 404),  # a full-width digit one
]


@pytest.mark.parametrize(("segment", "status"), DERIVED_SEGMENTS)
def test_hostile_derived_segment_is_refused_without_generating(
    standalone: Server, image_id: str, segment: str, status: int
) -> None:
    assert upload(standalone, image_id, images.jpeg(40, 30)).status_code == 201
    response = requests.get(standalone.url(f"/derived/{segment.format(id=image_id)}"), timeout=10)
    assert_problem(response, status)
    assert standalone.rows(image_id) == (1, 0)
    assert not list((standalone.data_directory / "derived").glob(f"{image_id}/*"))
    assert (
        requests.delete(standalone.url(f"/original/{image_id}"), auth=standalone.auth, timeout=10).status_code
        == 204
    )
    assert standalone.leaves_nothing(image_id)


# -- request bodies -------------------------------------------------------------------------------


def _part(name: str, content: bytes, filename: str | None = "a.jpg") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return b"--zz\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n" + content + b"\r\n"


MULTIPART: list[tuple[str, bytes, int, str]] = [
    (
        "two-file-fields",
        _part("file", images.jpeg()) + _part("file", images.png()) + b"--zz--\r\n",
        400,
        "one",
    ),
    ("no-file-field", _part("picture", images.jpeg()) + b"--zz--\r\n", 400, "no field named 'file'"),
    (
        "unterminated-part",
        b"--zz\r\nContent-Disposition: form-data; name=file\r\n\r\n" + b"x" * 70_000,
        400,
        "",
    ),
    ("no-part-headers", b"--zz\r\n" + b"\xff" * 1000, 400, ""),
    ("only-a-closing-boundary", b"--zz--\r\n", 400, ""),
]


@pytest.mark.parametrize(("body", "status", "detail"), [pytest.param(*c[1:], id=c[0]) for c in MULTIPART])
def test_malformed_multipart_is_bad_request_and_leaves_nothing(
    target: Server, image_id: str, body: bytes, status: int, detail: str
) -> None:
    response = requests.post(
        target.url(f"/original/{image_id}"),
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
        auth=target.auth,
        timeout=30,
    )
    assert_problem(response, status, detail)
    assert target.leaves_nothing(image_id)
    assert_healthy(target)


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_a_request_without_host_is_bad_request_even_with_a_body(
    standalone: Server, image_id: str, method: str
) -> None:
    """CherryPy refuses an HTTP/1.1 request without Host before it makes the request's body; the body
    sent with it is still read and dropped, and the answer is the 400 problem, not a 500."""
    upload(standalone, image_id, images.jpeg())
    host, port = standalone.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            f"{method} /original/{image_id} HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".encode()
        )
        response = http.client.HTTPResponse(connection)
        response.begin()
        body = response.read()
    assert response.status == 400, body
    assert response.getheader("Content-Type") == "application/problem+json"
    assert b"Host" in body
    assert standalone.rows(image_id) == (1, 0)
    assert_healthy(standalone)


def test_declared_length_over_the_limit_is_refused_before_reading(standalone: Server, image_id: str) -> None:
    headers = {
        "Content-Type": "multipart/form-data; boundary=zz",
        "Content-Length": str(10 * MAX_UPLOAD_BYTES),
    }
    # Announces 20 MiB, sends nothing.
    status, body = raw_post(standalone, f"/original/{image_id}", headers, [])
    assert status == 413
    assert b"max_upload_bytes" in body
    assert standalone.leaves_nothing(image_id)
    assert_healthy(standalone)


def test_chunked_body_over_the_limit_is_cut_off(standalone: Server, image_id: str) -> None:
    part = _part("file", images.jpeg() + b"\0" * (MAX_UPLOAD_BYTES + 100_000)) + b"--zz--\r\n"
    chunked = f"{len(part):x}\r\n".encode() + part + b"\r\n0\r\n\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=zz", "Transfer-Encoding": "chunked"}
    try:
        status, _ = raw_post(standalone, f"/original/{image_id}", headers, [chunked])
    except (ConnectionError, http.client.HTTPException):
        status = 413  # the server may close the connection while the client is still sending
    assert status == 413
    assert standalone.leaves_nothing(image_id)
    assert_healthy(standalone)


def test_multipart_filename_is_ignored(target: Server, image_id: str) -> None:
    data = images.png(20, 20)
    response = upload(target, image_id, data, filename="../../../../evil.php", content_type="text/html")
    assert response.status_code == 201, response.text
    original = requests.get(target.url(f"/original/{image_id}"), timeout=10)
    assert original.headers["Content-Type"] == "image/png"
    assert not [p for p in target.data_directory.parent.rglob("evil*")]
    assert (
        requests.delete(target.url(f"/original/{image_id}"), auth=target.auth, timeout=10).status_code == 204
    )
    assert target.leaves_nothing(image_id)


# -- what is accepted is served safely ------------------------------------------------------------

POLYGLOTS = {
    "jpeg-with-zip-appended": images.jpeg(40, 30) + b"PK\x03\x04" + b"payload" * 20,
    "jpeg-with-html-comment": images.jpeg(40, 30, comment=b"<script>alert(1)</script>"),
    "png-with-html-after-iend": images.png(40, 30) + b"<html><script>alert(1)</script></html>",
    "gif-with-html-comment": images.encode(Image.new("P", (40, 30)), "GIF", comment=b"<script>x</script>"),
}


@pytest.mark.parametrize("name", sorted(POLYGLOTS))
def test_polyglot_is_served_as_its_image_type_and_derived_clean(
    target: Server, image_id: str, name: str
) -> None:
    data = POLYGLOTS[name]
    assert upload(target, image_id, data).status_code == 201
    original = requests.get(target.url(f"/original/{image_id}"), timeout=10)
    assert original.content == data
    assert original.headers["Content-Type"].startswith("image/")
    assert original.headers["X-Content-Type-Options"] == "nosniff"
    for ext in ("jpg", "png", "gif", "webp"):
        derived = requests.get(target.url(f"/derived/{image_id}-20x20.{ext}"), timeout=30)
        assert derived.status_code == 200
        assert derived.headers["X-Content-Type-Options"] == "nosniff"
        assert b"script" not in derived.content
        assert b"PK\x03\x04" not in derived.content
        assert images.has_metadata(derived.content) == []
    assert (
        requests.delete(target.url(f"/original/{image_id}"), auth=target.auth, timeout=10).status_code == 204
    )
    assert target.leaves_nothing(image_id)


def test_gps_xmp_and_comments_never_reach_a_derived_image(target: Server, image_id: str) -> None:
    data = images.jpeg(
        64, 48, gps=True, comment=b"home address", xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>', icc=True
    )
    assert {"gps", "xmp", "comment"} <= set(images.has_metadata(data))
    assert upload(target, image_id, data).status_code == 201
    for ext in ("jpg", "png", "gif", "webp"):
        derived = requests.get(target.url(f"/derived/{image_id}-32x24.{ext}"), timeout=30).content
        assert images.has_metadata(derived) == []
        assert images.exif_tags(derived) == {}
        assert b"home address" not in derived


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_to_the_pixels(
    target: Server, image_id: str, orientation: int
) -> None:
    upright = images.quadrants(96, 64)
    method = images.INVERSE_TRANSPOSITION[orientation]
    stored = upright if method is None else upright.transpose(method)
    assert upload(target, image_id, images.jpeg(image=stored, orientation=orientation)).status_code == 201
    derived = requests.get(target.url(f"/derived/{image_id}-48x32.png"), timeout=30)
    with Image.open(io.BytesIO(derived.content)) as picture:
        result = picture.convert("RGB")
    assert result.size == (48, 32)
    for centre, colour in zip([(12, 8), (36, 8), (12, 24), (36, 24)], images.QUADRANT_COLOURS, strict=True):
        pixel = result.getpixel(centre)
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 40 for a, b in zip(pixel, colour, strict=True)), (centre, pixel, colour)


SOURCE_MODES = {
    "jpeg-cmyk": lambda: images.jpeg(40, 30, mode="CMYK"),
    "png-p-transparent": lambda: images.png(40, 30, mode="P", transparency=True),
    "png-la": lambda: images.png(40, 30, mode="LA"),
    "png-i16": lambda: images.png(40, 30, mode="I;16"),
    "png-rgba": lambda: images.png(40, 30, mode="RGBA"),
}
MIME = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


@pytest.mark.parametrize("source", sorted(SOURCE_MODES))
def test_every_source_mode_derives_to_every_format(target: Server, image_id: str, source: str) -> None:
    assert upload(target, image_id, SOURCE_MODES[source]()).status_code == 201
    for ext, mime in MIME.items():
        response = requests.get(target.url(f"/derived/{image_id}-24x18.{ext}"), timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == mime
        with Image.open(io.BytesIO(response.content)) as picture:
            assert picture.size == (24, 18)
            picture.load()
    assert_healthy(target)
