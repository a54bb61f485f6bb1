"""The geometry table: every mode × picture shape × EXIF orientation, in-process on small generated
pictures whose corner markers show where the content lands (``images.corner_markers``)."""

from __future__ import annotations

import io
from typing import cast

import pytest
from PIL import Image

from pymager.adapters.pillow import PillowProcessor
from pymager.domain import CENTRE, Focus, ImageFormat, Mode, Rendition, Size
from tests import images

# Upright sizes. The JPEGs are large enough beside the boxes for the decoder to scale them (draft).
SHAPES = {
    "landscape": (480, 320),
    "portrait": (320, 480),
    "square": (400, 400),
    "smaller-than-box": (40, 30),
    "strip-wide": (300, 1),
    "strip-tall": (1, 300),
}
BOXES = [Size(80, 80), Size(120, 40)]
ORIENTATIONS = range(1, 9)
TL, TR, BL, BR = images.QUADRANT_COLOURS
PROCESSOR = PillowProcessor(detect_focus=False)


def derive(data: bytes, rendition: Rendition, processor: PillowProcessor = PROCESSOR) -> Image.Image:
    out = io.BytesIO()
    processor.derive(io.BytesIO(data), rendition, out)
    with Image.open(io.BytesIO(out.getvalue())) as result:
        result.load()
        return result.copy()


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    return cast(tuple[int, ...], image.convert("RGBA").getpixel((x, y)))


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 48) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def expected_fit(box: Size, width: int, height: int) -> tuple[int, int]:
    scale = min(box.width / width, box.height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def corner_colours(width: int, height: int) -> dict[str, images.RGB]:
    """What a picture of ``corner_markers`` shows in each corner (a strip shows its bottom markers)."""
    if height == 1:
        return {"tl": BL, "tr": BR, "bl": BL, "br": BR}
    if width == 1:
        return {"tl": TR, "tr": TR, "bl": BR, "br": BR}
    return {"tl": TL, "tr": TR, "bl": BL, "br": BR}


def corners(region: tuple[int, int, int, int]) -> dict[str, tuple[int, int]]:
    """Sample points a tenth inside each corner of ``region`` (left, top, right, bottom)."""
    left, top, right, bottom = region
    dx, dy = (right - left) // 10, (bottom - top) // 10
    return {
        "tl": (left + dx, top + dy),
        "tr": (right - 1 - dx, top + dy),
        "bl": (left + dx, bottom - 1 - dy),
        "br": (right - 1 - dx, bottom - 1 - dy),
    }


def assert_aspect(size: tuple[int, int], width: int, height: int) -> None:
    out_w, out_h = size
    assert abs(out_h - out_w * height / width) <= 1 or abs(out_w - out_h * width / height) <= 1


@pytest.fixture(scope="module")
def sources() -> dict[tuple[str, int, str], bytes]:
    """Every shape, stored for every orientation, as PNG (exact colours) and JPEG (draft-scaled)."""
    made = {}
    for shape, (width, height) in SHAPES.items():
        upright = images.corner_markers(width, height)
        for orientation in ORIENTATIONS:
            made[shape, orientation, "PNG"] = images.oriented(upright, orientation, "PNG")
            made[shape, orientation, "JPEG"] = images.oriented(upright, orientation, "JPEG", quality=95)
    return made


TABLE = [
    pytest.param(shape, orientation, container, box, id=f"{shape}-o{orientation}-{container}-{box}")
    for shape in SHAPES
    for orientation in ORIENTATIONS
    for container in ("PNG", "JPEG")
    for box in BOXES
]


@pytest.mark.parametrize(("shape", "orientation", "container", "box"), TABLE)
def test_fit_is_the_whole_picture_inside_the_box_never_enlarged(
    sources: dict[tuple[str, int, str], bytes], shape: str, orientation: int, container: str, box: Size
) -> None:
    width, height = SHAPES[shape]
    result = derive(sources[shape, orientation, container], Rendition(box, Mode.FIT, ImageFormat.PNG))
    assert result.size == expected_fit(box, width, height)
    assert result.width <= box.width
    assert result.height <= box.height
    assert_aspect(result.size, width, height)
    wanted = corner_colours(width, height)
    for corner, (x, y) in corners((0, 0, *result.size)).items():
        assert close_to(pixel(result, x, y), wanted[corner]), (corner, pixel(result, x, y))


@pytest.mark.parametrize(("shape", "orientation", "container", "box"), TABLE)
def test_pad_centres_the_fitted_picture_on_the_box(
    sources: dict[tuple[str, int, str], bytes], shape: str, orientation: int, container: str, box: Size
) -> None:
    width, height = SHAPES[shape]
    result = derive(sources[shape, orientation, container], Rendition(box, Mode.PAD, ImageFormat.PNG))
    assert result.size == (box.width, box.height)
    fitted = expected_fit(box, width, height)
    content = result.getchannel("A").getbbox() if result.mode in ("RGBA", "LA") else (0, 0, *result.size)
    assert content is not None
    assert (content[2] - content[0], content[3] - content[1]) == fitted
    assert abs(content[0] - (box.width - content[2])) <= 1  # centred: margins equal within a pixel
    assert abs(content[1] - (box.height - content[3])) <= 1
    wanted = corner_colours(width, height)
    for corner, (x, y) in corners(content).items():
        assert close_to(pixel(result, x, y), wanted[corner]), (corner, pixel(result, x, y))
    if fitted != (box.width, box.height):
        assert pixel(result, 0, 0)[3] == 0
        assert pixel(result, box.width - 1, box.height - 1)[3] == 0


FOCAL_CORNERS = {"tl": Focus(0.1, 0.1), "br": Focus(0.9, 0.9)}


@pytest.mark.parametrize("corner", sorted(FOCAL_CORNERS))
@pytest.mark.parametrize(("shape", "orientation", "container", "box"), TABLE)
def test_fill_is_exactly_the_box_and_keeps_the_focal_region(
    sources: dict[tuple[str, int, str], bytes],
    shape: str,
    orientation: int,
    container: str,
    box: Size,
    corner: str,
) -> None:
    width, height = SHAPES[shape]
    rendition = Rendition(box, Mode.FILL, ImageFormat.PNG, FOCAL_CORNERS[corner])
    result = derive(sources[shape, orientation, container], rendition)
    assert result.size == (box.width, box.height)
    x, y = corners((0, 0, *result.size))[corner]
    assert close_to(pixel(result, x, y), corner_colours(width, height)[corner]), pixel(result, x, y)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize(
    ("focus", "spot"),
    [
        (Focus(0.92, 0.5), (0.88, 0.42, 0.96, 0.58)),  # near the right edge
        (Focus(0.06, 0.5), (0.02, 0.42, 0.10, 0.58)),  # near the left edge
    ],
    ids=["right", "left"],
)
def test_fill_crop_keeps_a_focal_point_near_an_edge(
    orientation: int, focus: Focus, spot: tuple[float, float, float, float]
) -> None:
    """A wide picture into a square: a centre crop loses the spot, a crop around its focal point keeps
    it, whatever the stored orientation."""
    upright = Image.new("RGB", (300, 100), images.GREY)
    left, top, right, bottom = spot
    upright.paste(images.MAGENTA, (int(left * 300), int(top * 100), int(right * 300), int(bottom * 100)))
    data = images.oriented(upright, orientation, "JPEG", quality=95)

    def has_spot(result: Image.Image) -> bool:
        return any(
            close_to(pixel(result, x, y), images.MAGENTA, 60) for x in range(result.width) for y in (50,)
        )

    assert not has_spot(derive(data, Rendition(Size(100, 100), Mode.FILL, ImageFormat.PNG, CENTRE)))
    assert has_spot(derive(data, Rendition(Size(100, 100), Mode.FILL, ImageFormat.PNG, focus)))


def test_fill_centres_the_window_on_the_focal_point_where_it_can() -> None:
    """A 400×100 ramp (red = x) into 100×100 around x = 0.5 of the picture: the window is 100 wide
    and centred, so its middle column is red 128; around x = 0.3 it is red 0.3 × 255."""
    ramp = Image.linear_gradient("L").rotate(90).resize((400, 100))
    picture = Image.merge("RGB", (ramp, Image.new("L", (400, 100)), Image.new("L", (400, 100))))
    data = images.encode(picture, "PNG")
    for fraction in (0.5, 0.3, 0.75):
        result = derive(data, Rendition(Size(100, 100), Mode.FILL, ImageFormat.PNG, Focus(fraction, 0.5)))
        assert abs(pixel(result, 50, 50)[0] - fraction * 255) <= 3, fraction


@pytest.mark.parametrize("image_format", [ImageFormat.JPEG, ImageFormat.GIF, ImageFormat.WEBP])
def test_pad_margins_are_transparent_or_the_pad_colour(image_format: ImageFormat) -> None:
    processor = PillowProcessor(pad_colour=(10, 200, 30), detect_focus=False)
    data = images.encode(images.corner_markers(60, 30), "PNG")
    result = derive(data, Rendition(Size(60, 60), Mode.PAD, image_format), processor)
    assert result.size == (60, 60)
    margin, inside = pixel(result, 30, 5), pixel(result, 30, 30)
    if image_format is ImageFormat.JPEG:
        assert result.mode == "RGB"
        assert close_to(margin, (10, 200, 30, 255), 6)
    else:
        assert margin[3] == 0
    assert close_to(inside, (*images.GREY, 255), 12)


def test_pad_of_a_grey_picture_onto_a_colour_is_rgb() -> None:
    processor = PillowProcessor(pad_colour=(10, 200, 30), detect_focus=False)
    data = images.encode(Image.new("L", (60, 30), 90), "PNG")
    result = derive(data, Rendition(Size(60, 60), Mode.PAD, ImageFormat.JPEG), processor)
    assert close_to(pixel(result, 30, 5), (10, 200, 30, 255), 6)
    assert close_to(pixel(result, 30, 30), (90, 90, 90, 255), 6)


def test_pad_keeps_the_pictures_transparency_flattened_on_white_for_jpeg() -> None:
    picture = Image.new("RGBA", (60, 30), (0, 0, 0, 0))
    processor = PillowProcessor(pad_colour=(10, 200, 30), detect_focus=False)
    result = derive(
        images.encode(picture, "PNG"), Rendition(Size(60, 60), Mode.PAD, ImageFormat.JPEG), processor
    )
    assert close_to(pixel(result, 30, 30), (255, 255, 255, 255), 6)
    assert close_to(pixel(result, 30, 5), (10, 200, 30, 255), 6)


def test_fit_of_a_picture_smaller_than_the_box_keeps_its_size_and_pixels() -> None:
    picture = images.corner_markers(40, 30)
    result = derive(images.encode(picture, "PNG"), Rendition(Size(400, 300), Mode.FIT, ImageFormat.PNG))
    assert result.size == (40, 30)
    assert result.convert("RGB").tobytes() == picture.tobytes()
