"""Fuzzing the HTTP API with hypothesis: whatever the upload body or derived URL segment, the server
never answers 5xx and never leaves a row, file or temporary file behind."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import images
from tests.functional.conftest import Server

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# HEIF and AVIF, whose boxes the container scan walks: a still, with alpha, a sequence, a grid.
AVIF_AND_HEIC_SEEDS = [
    images.avif(24, 16),
    images.avif(12, 8, mode="RGBA", frames=2),
    images.heic(24, 16),
    images.heic(12, 8, mode="RGBA"),
    images.heic(96, 64, tile=64),
]
SEEDS = [
    images.jpeg(24, 16),
    images.jpeg(24, 16, progressive=True),
    images.png(24, 16),
    images.png(12, 8, mode="P", transparency=True),
    images.gif(12, 8, frames=2),
    images.webp(12, 8),
    images.encode(images.gradient(24, 16), "WEBP", quality=70),
    *AVIF_AND_HEIC_SEEDS,
]


FTYPS = [b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", b"\0\0\0\x18ftypavif\0\0\0\0mif1avif"]


@st.composite
def mutated_images(draw: st.DrawFn, seeds: list[bytes] = SEEDS) -> bytes:
    """A valid small image with a few bytes flipped, inserted, deleted, or cut short."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "ff"]))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete" and len(data) > 1:
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data[at] = 0xFF
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


bodies = st.one_of(
    st.binary(max_size=2048),
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\0\0\0\0WEBP", *FTYPS]).flatmap(
        lambda magic: st.binary(max_size=512).map(lambda rest: magic + rest)
    ),
    mutated_images(),
)


@pytest.fixture
def target(server: Server) -> Server:
    """Any server: standalone, or behind Apache or nginx (which guard writes with their own credentials)."""
    return server


@pytest.fixture
def standalone(server: Server) -> Server:
    if server.behind_front:
        pytest.skip("fuzzing targets pymager's own server")
    return server


@FUZZ
@given(body=bodies)
def test_any_upload_body_gets_a_4xx_or_a_usable_image(target: Server, body: bytes) -> None:
    _assert_refused_or_usable(target, body)


@FUZZ
@given(body=mutated_images(AVIF_AND_HEIC_SEEDS))
def test_any_mutated_avif_or_heic_upload_gets_a_4xx_or_a_usable_image(target: Server, body: bytes) -> None:
    """Every example a mutated AVIF or HEIC: the box walk and both decoders get examples of their own."""
    _assert_refused_or_usable(target, body)


def _assert_refused_or_usable(target: Server, body: bytes) -> None:
    """Uploading ``body`` is refused with a 400 problem or stores an image that derives to every
    format; either way nothing is left behind once it is deleted."""
    image_id = f"fuzz-{uuid.uuid4().hex[:12]}"
    response = requests.post(
        target.url(f"/original/{image_id}"),
        files={"file": ("f.jpg", body)},
        auth=target.auth,
        timeout=30,
    )
    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:  # accepted means usable: it derives to every format
        for ext in ("jpg", "png", "gif", "webp"):
            derived = requests.get(target.url(f"/derived/{image_id}-9x7.{ext}"), timeout=30)
            assert derived.status_code == 200, derived.text
        assert (
            requests.delete(target.url(f"/original/{image_id}"), auth=target.auth, timeout=10).status_code
            == 204
        )
    else:
        assert response.headers["Content-Type"] == "application/problem+json"
        kinds = ("unsupported-image", "corrupt-image", "decoding-limit")
        assert response.json()["type"] in [f"urn:pymager:problem:{kind}" for kind in kinds]
    assert target.leaves_nothing(image_id)


@pytest.fixture
def stored_id(standalone: Server) -> str:
    image_id = f"fuzz-{uuid.uuid4().hex[:12]}"
    requests.post(
        standalone.url(f"/original/{image_id}"),
        files={"file": ("f.jpg", images.jpeg(30, 20))},
        auth=standalone.auth,
        timeout=30,
    ).raise_for_status()
    return image_id


segment_text = st.text(
    alphabet=st.sampled_from([*"ab-_x.0123456789/%?#;:~ ", "\x00", "é", "١", "１", "\u202e"]),
    max_size=40,
)
sizes = st.one_of(st.integers(0, 10**10), st.integers(0, 64)).map(str)
extensions = st.sampled_from(["jpg", "jpeg", "png", "gif", "webp", "JPG", "bmp", "svg", ""])


@FUZZ
@given(
    prefix=st.one_of(st.just(""), segment_text),
    width=st.one_of(sizes, segment_text),
    height=st.one_of(sizes, segment_text),
    mode=st.one_of(st.sampled_from(["", "-fit", "-pad", "-fill", "-Fit", "-fit-pad"]), segment_text),
    ext=st.one_of(extensions, segment_text),
    use_stored=st.booleans(),
)
def test_any_derived_segment_gets_an_image_or_a_4xx(
    standalone: Server,
    stored_id: str,
    prefix: str,
    width: str,
    height: str,
    mode: str,
    ext: str,
    use_stored: bool,
) -> None:
    image_id = stored_id if use_stored else prefix
    segment = f"{image_id}-{width}x{height}{mode}.{ext}"
    response = requests.get(standalone.url(f"/derived/{quote(segment, safe='')}"), timeout=30)
    assert response.status_code in (200, 400, 403, 404), response.text
    if response.status_code != 200:
        assert response.headers["Content-Type"] == "application/problem+json"
    assert not standalone.temporary_files()
    assert standalone.rows(stored_id)[0] == 1
