"""The placeholder identify computes at upload: a ThumbHash of the upright picture in sRGB, and the
dominant colour of its opaque pixels."""

from __future__ import annotations

import base64
import io

import pytest
import thumbhash
from PIL import Image

from pymager.adapters.pillow import PillowProcessor
from pymager.domain import Placeholder
from tests import images


def placeholder_of(data: bytes) -> Placeholder:
    found = PillowProcessor(detect_focus=False).identify(io.BytesIO(data)).placeholder
    assert found is not None
    return found


def test_the_dominant_colour_is_the_most_frequent_not_the_average() -> None:
    picture = Image.new("RGB", (120, 80), (20, 40, 200))
    picture.paste((250, 250, 10), (0, 0, 40, 80))  # a third yellow: the average would be neither
    assert placeholder_of(images.encode(picture, "PNG")).colour == "#1428c8"


def test_transparent_pixels_do_not_count_and_the_hash_keeps_the_alpha() -> None:
    picture = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    picture.paste((10, 200, 30, 255), (16, 16, 48, 48))
    found = placeholder_of(images.encode(picture, "PNG"))
    assert found.colour == "#0ac81e"
    *_, alpha = thumbhash.thumb_hash_to_average_rgba(base64.b64decode(found.thumbhash))
    assert alpha < 0.5


@pytest.mark.parametrize(("orientation", "ratio"), [(1, 2.0), (6, 0.5)])
def test_the_hash_is_of_the_upright_picture(orientation: int, ratio: float) -> None:
    found = placeholder_of(images.jpeg(200, 100, orientation=orientation))
    aspect = thumbhash.thumb_hash_to_approximate_aspect_ratio(base64.b64decode(found.thumbhash))
    assert aspect == pytest.approx(ratio, rel=0.15)


def test_every_input_format_gets_a_placeholder() -> None:
    for data in (images.gif(30, 20, frames=2), images.png(20, 10, mode="I;16"), images.webp(16, 16)):
        assert len(base64.b64decode(placeholder_of(data).thumbhash)) >= 5
