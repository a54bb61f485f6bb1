"""Derived images are sRGB: the embedded profile converted by littlecms, checked against an independent
conversion (coloraide) of the colour space's own definition. Only generated pictures and profiles,
except Ghostscript's CMYK press profile (Debian ``libgs-common``)."""

from __future__ import annotations

import hashlib
import io
from typing import Any, cast

import pytest
from coloraide import Color
from PIL import Image, ImageCms

from pymager.adapters.imaging import colour
from pymager.adapters.pillow import PillowProcessor
from pymager.domain import DERIVED_FORMATS, ImageFormat, Mode, Rendition, Size
from tests import images

PATCH = 24  # side of each flat patch in the generated pictures
MAX_DELTA_E = 2.0
NAIVE_DELTA_E = 3.0  # how far each reference patch is from its numbers read as sRGB (the test's teeth)


def derive(data: bytes, size: Size, image_format: ImageFormat = ImageFormat.PNG) -> Image.Image:
    out = io.BytesIO()
    PillowProcessor().derive(io.BytesIO(data), Rendition(size, Mode.FILL, image_format), out)
    with Image.open(io.BytesIO(out.getvalue())) as result:
        result.load()
        return result.copy()


def patches(mode: str, values: list[Any]) -> Image.Image:
    """A row of flat ``PATCH`` × ``PATCH`` patches of ``values`` in ``mode``."""
    image = Image.new(mode, (PATCH * len(values), PATCH))
    for index, value in enumerate(values):
        image.paste(value, (index * PATCH, 0, (index + 1) * PATCH, PATCH))
    return image


def patch_colours(result: Image.Image, count: int) -> list[Color]:
    """The sRGB colour at the centre of each patch of a derived ``patches`` picture (half size)."""
    rgb = result.convert("RGB")
    half = PATCH // 2
    return [
        srgb(cast(tuple[int, ...], rgb.getpixel((i * half + half // 2, half // 2)))) for i in range(count)
    ]


def srgb(pixel: tuple[int, ...]) -> Color:
    return Color("srgb", [c / 255 for c in pixel[:3]])


def delta_e(a: Color, b: Color) -> float:
    return float(a.delta_e(b, method="2000"))


# Values of each space that sRGB can show, far enough from the same numbers read as sRGB that a
# pipeline ignoring the profile fails.
RGB_SPACES = {
    "adobe-rgb": (
        images.ADOBE_RGB,
        "a98-rgb",
        [(210, 30, 90), (210, 60, 30), (120, 210, 150), (90, 150, 210)],
    ),
    "display-p3": (
        images.DISPLAY_P3,
        "display-p3",
        [(90, 180, 60), (180, 60, 30), (210, 150, 60), (120, 210, 180)],
    ),
    "prophoto": (
        images.PROPHOTO_RGB,
        "prophoto-rgb",
        [(120, 150, 210), (150, 90, 60), (90, 120, 150), (180, 120, 60)],
    ),
}


@pytest.mark.parametrize("container", ["PNG", "JPEG"])
@pytest.mark.parametrize("space", sorted(RGB_SPACES))
def test_derive_converts_a_wide_gamut_profile_to_srgb(space: str, container: str) -> None:
    definition, name, values = RGB_SPACES[space]
    expected = [Color(name, [c / 255 for c in value]).convert("srgb") for value in values]
    assert all(wanted.in_gamut() for wanted in expected)
    assert all(delta_e(srgb(v), e) > NAIVE_DELTA_E for v, e in zip(values, expected, strict=True))
    params: dict[str, Any] = {"icc_profile": images.rgb_profile(definition)}
    if container == "JPEG":
        params.update(quality=95, subsampling=0)
    data = images.encode(patches("RGB", values), container, **params)
    result = derive(data, Size(PATCH * len(values) // 2, PATCH // 2))
    for found, wanted in zip(patch_colours(result, len(values)), expected, strict=True):
        assert delta_e(found, wanted) <= MAX_DELTA_E, (space, found, wanted)


CMYK_VALUES = [(0, 180, 200, 0), (20, 30, 200, 10), (60, 50, 40, 100), (100, 0, 100, 20), (0, 0, 0, 200)]


def test_derive_converts_an_adobe_cmyk_jpeg_with_its_profile() -> None:
    """The reference is the press profile's own colorimetric value of each ink mix (CMYK → Lab), which
    a conversion ignoring the profile misses by far."""
    profile = images.cmyk_profile()
    to_lab = ImageCms.ImageCmsTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB", 5000)),
        "CMYK",
        "LAB",
        ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    expected = []
    for value in CMYK_VALUES:
        lightness, a, b = to_lab.apply(Image.new("CMYK", (1, 1), value)).getpixel((0, 0))  # type: ignore[misc]
        expected.append(Color("lab", [lightness * 100 / 255, a - 128, b - 128]))
    source = patches("CMYK", CMYK_VALUES)
    naive = patch_colours(source.convert("RGB").reduce(2), len(CMYK_VALUES))
    assert all(delta_e(n, e) > NAIVE_DELTA_E for n, e in zip(naive, expected, strict=True))
    data = images.encode(source, "JPEG", quality=95, icc_profile=profile)
    assert b"Adobe" in data  # an inverted CMYK JPEG, as Photoshop writes them
    result = derive(data, Size(PATCH * len(CMYK_VALUES) // 2, PATCH // 2))
    assert result.mode == "RGB"
    for found, wanted in zip(patch_colours(result, len(CMYK_VALUES)), expected, strict=True):
        assert delta_e(found, wanted) <= MAX_DELTA_E, (found, wanted)


@pytest.mark.parametrize("container", ["PNG", "JPEG"])
def test_derive_converts_a_grey_profile_and_stays_grey(container: str) -> None:
    values = [40, 90, 160]
    data = images.encode(patches("L", values), container, icc_profile=images.grey_profile(gamma=1.0))
    result = derive(data, Size(PATCH * len(values) // 2, PATCH // 2))
    assert result.mode == "L"
    expected = [Color("srgb-linear", [v / 255] * 3) for v in values]  # linear grey: v is the luminance
    for found, wanted in zip(patch_colours(result, len(values)), expected, strict=True):
        assert delta_e(found, wanted) <= MAX_DELTA_E, (found, wanted.convert("srgb"))


def test_derive_keeps_alpha_through_the_conversion() -> None:
    picture = patches("RGB", [(200, 90, 60)]).convert("RGBA")
    picture.putalpha(100)
    data = images.encode(picture, "PNG", icc_profile=images.rgb_profile(images.ADOBE_RGB))
    result = derive(data, Size(PATCH // 2, PATCH // 2))
    assert result.mode == "RGBA"
    assert result.getchannel("A").getextrema() == (100, 100)
    found = srgb(cast(tuple[int, ...], result.getpixel((6, 6))))
    assert delta_e(found, Color("a98-rgb", [200 / 255, 90 / 255, 60 / 255])) <= MAX_DELTA_E


def test_a_500_kb_profile_adds_nothing_to_the_thumbnail() -> None:
    picture = images.gradient(600, 400)
    big = images.rgb_profile(images.SRGB, padding=500_000)
    assert len(big) > 500_000
    tagged = images.encode(picture, "JPEG", quality=90, icc_profile=big)
    untagged = images.encode(picture, "JPEG", quality=90)
    assert len(tagged) - len(untagged) > 500_000
    for image_format in DERIVED_FORMATS:
        with_profile = io.BytesIO()
        without = io.BytesIO()
        rendition = Rendition(Size(160, 120), Mode.FILL, image_format)
        PillowProcessor().derive(io.BytesIO(tagged), rendition, with_profile)
        PillowProcessor().derive(io.BytesIO(untagged), rendition, without)
        assert abs(len(with_profile.getvalue()) - len(without.getvalue())) <= 1024, image_format


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(images.rgb_profile(images.ADOBE_RGB)[:300], id="truncated"),
        pytest.param(b"not a profile at all" * 10, id="garbage"),
        pytest.param(images.grey_profile(), id="grey-profile-on-rgb"),
    ],
)
def test_derive_takes_pixels_as_srgb_when_the_profile_does_not_fit(profile: bytes) -> None:
    values = [(200, 90, 60), (60, 120, 170)]
    tagged = images.encode(patches("RGB", values), "PNG", icc_profile=profile)
    untagged = images.encode(patches("RGB", values), "PNG")
    size = Size(PATCH * len(values) // 2, PATCH // 2)
    assert derive(tagged, size).tobytes() == derive(untagged, size).tobytes()


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(images.srgb_profile(), id="littlecms-srgb"),
        pytest.param(images.rgb_profile(images.SRGB), id="srgb-v2"),
    ],
)
def test_an_srgb_profile_leaves_the_pixels_as_they_are(profile: bytes) -> None:
    values = [(200, 90, 60), (60, 120, 170), (3, 250, 128)]
    tagged = images.encode(patches("RGB", values), "PNG", icc_profile=profile)
    untagged = images.encode(patches("RGB", values), "PNG")
    size = Size(PATCH * len(values) // 2, PATCH // 2)
    assert derive(tagged, size).tobytes() == derive(untagged, size).tobytes()


def test_derive_builds_each_transform_once(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = colour.TransformCache(colour.TRANSFORM_CACHE_SIZE)
    monkeypatch.setattr(colour, "TRANSFORMS", cache)
    profile = images.rgb_profile(images.DISPLAY_P3)
    for _ in range(3):
        data = images.encode(patches("RGB", [(200, 90, 60)]), "PNG", icc_profile=bytes(profile))
        derive(data, Size(PATCH // 2, PATCH // 2))
    assert cache.builds == 1


def test_the_transform_cache_is_bounded() -> None:
    cache = colour.TransformCache(2)
    profiles = [images.rgb_profile({**images.DISPLAY_P3, "name": f"P3 {index}"}) for index in range(3)]
    keys = [colour.Profile(hashlib.sha256(data).digest(), data) for data in profiles]
    for key in [*keys, keys[2], keys[1]]:
        assert cache.get(key, "RGB") is not None
    assert len(cache) == 2
    assert cache.builds == 3  # the last two were still cached
    cache.get(keys[0], "RGB")
    assert cache.builds == 4  # the first was dropped
