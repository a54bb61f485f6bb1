"""Bad input the soak mixes in, each with the statuses it must get (from tests/functional/
test_hostile.py's tables and the README's): hostile uploads, bad ids, bad derived segments."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.soak import client
from tests import images

BAD_REQUEST = frozenset({400})


@dataclass(frozen=True)
class HostileUpload:
    name: str
    make: Callable[[], tuple[bytes, str]]  # (body, Content-Type)
    expected: frozenset[int] = BAD_REQUEST

    def body(self) -> tuple[bytes, str]:
        return _made(self)


@functools.cache
def _made(case: HostileUpload) -> tuple[bytes, str]:
    return case.make()


def _file(data: bytes, content_type: str = "image/jpeg") -> Callable[[], tuple[bytes, str]]:
    return lambda: client.multipart({"file": ("picture.jpg", content_type, data)})


def _lazy_file(make: Callable[[], bytes]) -> Callable[[], tuple[bytes, str]]:
    return lambda: client.multipart({"file": ("picture.jpg", "image/jpeg", make())})


def _truncated_jpeg() -> bytes:
    data = images.jpeg(image=images.gradient(300, 200), progressive=True)
    return data[: len(data) // 2]


def _damaged_png() -> bytes:
    data = bytearray(images.png(64, 48))
    data[data.index(b"IEND") - 5] ^= 0xFF
    return bytes(data)


HOSTILE_UPLOADS: tuple[HostileUpload, ...] = (
    HostileUpload("png-10-gigapixels", _lazy_file(lambda: images.png_flood(100_000, 100_000))),
    HostileUpload("jpeg-3-gigapixels", _lazy_file(lambda: images.jpeg_flood(60_000, 60_000))),
    HostileUpload("gif-4-gigapixels", _lazy_file(lambda: images.gif_flood((65_535, 65_535)))),
    HostileUpload("webp-canvas-flood", _lazy_file(lambda: images.webp_flood(16_384, 16_384))),
    HostileUpload("jpeg-5000-scans", _lazy_file(lambda: images.jpeg_with_scans(5_000))),
    HostileUpload("gif-1001-frames", _lazy_file(lambda: images.gif_flood(frames=1_001))),
    HostileUpload("jpeg-truncated", _lazy_file(_truncated_jpeg)),
    HostileUpload("png-bad-crc", _lazy_file(_damaged_png)),
    HostileUpload("tiff", _lazy_file(lambda: images.tiff(64, 48))),
    HostileUpload("random-bytes", _lazy_file(lambda: random.Random(16).randbytes(50_000))),  # noqa: S311,
    HostileUpload("html", _file(b"<html><script>alert(1)</script></html>", "text/html")),
    HostileUpload("empty-file", _file(b"")),
    HostileUpload("no-file-field", lambda: client.multipart({"other": b"x"})),
    HostileUpload(
        "bad-focus",
        lambda: client.multipart({"file": ("a.jpg", "image/jpeg", images.jpeg()), "focus": b"2,2"}),
    ),
    HostileUpload("not-multipart", lambda: (images.jpeg(), "image/jpeg")),
    HostileUpload("broken-multipart", lambda: (b"--x\r\nnot a part", "multipart/form-data; boundary=x")),
)

# (method, path, expected statuses): an id outside [A-Za-z0-9_-]{1,128} is 400 on every method
BAD_IDS: tuple[tuple[str, str, frozenset[int]], ...] = tuple(
    (method, f"/original/{bad}", BAD_REQUEST)
    for bad in ("bad.id", "x" * 129, "%C3%A9t%C3%A9", "a%20b", "%2e%2e", "a;b", "a%00b", "~root", "*")
    for method in ("GET", "DELETE")
)

# (segment template with {id}, expected statuses); max_dimension is the default 4096 here
BAD_SEGMENTS: tuple[tuple[str, frozenset[int]], ...] = (
    ("/derived/{id}-9999999999x1.jpg", frozenset({404})),
    ("/derived/{id}-4097x4097.webp", frozenset({403})),
    ("/derived/{id}-1x1.JPG", BAD_REQUEST),
    ("/derived/{id}-1x1.svg", BAD_REQUEST),
    ("/derived/{id}-1x1.jpg.png", frozenset({404})),
    ("/derived/{id}-0x0.jpg", frozenset({404})),
    ("/derived/{id}-100x100-fill.jpg", frozenset({404})),
    ("/derived/{id}-100x100-zoom.jpg", frozenset({404})),
    ("/derived/{id}-0100x100.jpg", frozenset({404})),
    ("/derived/{id}-1x1", frozenset({404})),
    ("/derived/%2e%2e-1x1.jpg", frozenset({404})),
    ("/derived/no-such-id-{id}-100x100.jpg", frozenset({404})),
)
