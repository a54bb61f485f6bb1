"""Derived URL version 2 over HTTP: fill, fit and pad, unbounded sides, the focal point sent with an
upload, and the grammar's edges, on every server (SQLite, PostgreSQL, behind Apache)."""

from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

from tests import images
from tests.functional.conftest import MAX_DIMENSION, Server, assert_problem, upload


def fetch(server: Server, segment: str) -> Image.Image:
    response = requests.get(server.url(f"/derived/{segment}"), timeout=60)
    assert response.status_code == 200, response.text
    picture = Image.open(io.BytesIO(response.content))
    picture.load()
    return picture


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("200x200.jpg", (200, 200)),  # fill: exactly W×H
        ("200x200-fit.jpg", (200, 100)),
        ("150x0-fit.png", (150, 75)),
        ("0x50-fit.webp", (100, 50)),
        ("1000x1000-fit.jpg", (400, 200)),  # fit never enlarges
        ("200x200-pad.png", (200, 200)),
        ("1000x1000-pad.jpg", (1000, 1000)),
        ("1000x1000.jpg", (1000, 1000)),  # fill upscales, as pymager always did
    ],
)
def test_each_mode_gives_its_geometry(
    server: Server, image_id: str, name: str, size: tuple[int, int]
) -> None:
    assert upload(server, image_id, images.jpeg(400, 200)).status_code == 201
    assert fetch(server, f"{image_id}-{name}").size == size
    assert server.derived_names(image_id, name.replace(".jpeg", ".jpg"))


def test_an_unbounded_side_is_still_capped_by_max_dimension(server: Server, image_id: str) -> None:
    tall = images.jpeg(20, MAX_DIMENSION * 3)  # fit never enlarges, so the cap is what binds
    assert upload(server, image_id, tall).status_code == 201
    # 20x0 is a box of 20 × max_dimension: the height binds, at a third of the picture.
    assert fetch(server, f"{image_id}-20x0-fit.jpg").size == (7, MAX_DIMENSION)
    assert fetch(server, f"{image_id}-0x{MAX_DIMENSION}-fit.png").size == (7, MAX_DIMENSION)


def test_pad_is_transparent_where_the_format_has_alpha(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.jpeg(400, 200)).status_code == 201
    padded = fetch(server, f"{image_id}-100x100-pad.png").convert("RGBA")
    assert padded.getpixel((50, 5))[3] == 0  # the band above the picture
    assert padded.getpixel((50, 50))[3] == 255
    opaque = fetch(server, f"{image_id}-100x100-pad.jpg").convert("RGB")
    assert all(channel > 240 for channel in opaque.getpixel((50, 3)))  # pad_colour: white


@pytest.mark.parametrize(
    "name",
    ["10x0.jpg", "0x10-pad.jpg", "0x0-fit.jpg", "10x10-fill.jpg", "10x10-crop.jpg", "010x10-fit.jpg"],
)
def test_segments_outside_the_grammar_are_404(server: Server, image_id: str, name: str) -> None:
    assert upload(server, image_id, images.jpeg(40, 30)).status_code == 201
    response = requests.get(server.url(f"/derived/{image_id}-{name}"), timeout=30)
    assert_problem(response, 404, problem="invalid-derived-spec")


def test_an_id_with_dashes_parses_from_the_right(server: Server, image_id: str) -> None:
    tricky = f"{image_id}-10x10-fit"
    assert upload(server, tricky, images.jpeg(40, 20)).status_code == 201
    assert fetch(server, f"{tricky}-20x20-pad.png").size == (20, 20)
    assert server.derived_names(tricky, "20x20-pad.png")


def test_upload_keeps_the_focus_it_is_sent(server: Server, image_id: str) -> None:
    response = upload(server, image_id, images.jpeg(40, 30), form={"focus": "0.25,0.4"})
    assert response.status_code == 201, response.text
    assert response.json()["focus"] == [0.25, 0.4]


@pytest.mark.parametrize("focus", ["", "0.5", "2,0.5", "0.5,-0.1", "a,b", "0.5,0.5,0.5"])
def test_upload_with_a_bad_focus_is_400_and_stores_nothing(server: Server, image_id: str, focus: str) -> None:
    response = upload(server, image_id, images.jpeg(40, 30), form={"focus": focus})
    assert_problem(response, 400, problem="invalid-focus")
    assert server.leaves_nothing(image_id)


def test_a_fill_crop_keeps_the_focal_point(server: Server, image_id: str) -> None:
    """A wide picture, red at its left edge: focus there, and a square fill keeps the red."""
    picture = Image.new("RGB", (300, 100), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 40, 100))
    data = images.encode(picture, "PNG")
    assert upload(server, image_id, data, form={"focus": "0.05,0.5"}).status_code == 201
    crop = fetch(server, f"{image_id}-50x50.png").convert("RGB")
    red, _, blue = crop.getpixel((5, 25))
    assert red > 200
    assert blue < 60


def test_purge_derived_removes_derived_images_made_again_on_request(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.jpeg(40, 30)).status_code == 201
    fetch(server, f"{image_id}-10x10.jpg")
    fetch(server, f"{image_id}-10x0-fit.png")
    result = server.run_tool("--purge-derived", image_id)
    assert result.returncode == 0, result.stderr
    assert f"purged {image_id}-10x10.jpg" in result.stdout
    assert server.rows(image_id) == (1, 0)
    assert not server.derived_names(image_id, "*.*")
    fetch(server, f"{image_id}-10x10.jpg")  # made again
    assert server.rows(image_id) == (1, 1)


def test_a_failed_upload_with_a_focus_leaves_nothing(server: Server, image_id: str) -> None:
    response = upload(server, image_id, b"not an image at all", form={"focus": "0.25,0.4"})
    assert_problem(response, 400, problem="unsupported-image")
    assert server.leaves_nothing(image_id)
