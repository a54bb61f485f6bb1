"""Every accepted input format into every derived format, still pictures, through ``PillowProcessor``
and decoded again by Pillow: size, mode and a single frame, alpha where the output can keep it."""

from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image

from pymager.adapters.pillow import PillowProcessor
from pymager.domain import DERIVED_FORMATS, ImageFormat, Mode, Rendition, Size
from tests import images

# pillow-heif's encoder, for making HEIC originals (pymager registers only its decoder).
pillow_heif.register_heif_opener(thumbnails=False)


def _picture(mode: str) -> Image.Image:
    """A 48x32 gradient in ``mode`` (RGBA and LA: alpha 128; P: 16 colours, index 0 transparent)."""
    rgb = images.gradient(48, 32)
    if mode in ("RGBA", "LA"):
        picture = rgb.convert(mode)
        picture.putalpha(128)
        return picture
    if mode == "P":
        return rgb.quantize(colors=16)
    if mode == "I;16":
        return rgb.convert("L").convert("I").point(lambda value: value * 257).convert("I;16")
    return rgb.convert(mode)


def _still(image_format: str, mode: str) -> bytes:
    params: dict[str, object] = {}
    if mode == "P" and image_format in ("PNG", "GIF"):
        params["transparency"] = 0
    if image_format == "WEBP":
        params["lossless"] = True
    return images.encode(_picture(mode), image_format, **params)


# (original format, mode it is stored in) → whether the picture has transparency, whether it is grey.
STILLS = {
    ("JPEG", "RGB"): (False, False),
    ("JPEG", "L"): (False, True),
    ("PNG", "RGBA"): (True, False),
    ("PNG", "LA"): (True, True),
    ("PNG", "P"): (True, False),
    ("PNG", "I;16"): (False, True),
    ("GIF", "P"): (True, False),
    ("WEBP", "RGB"): (False, False),
    ("WEBP", "RGBA"): (True, False),
    ("AVIF", "RGB"): (False, False),
    ("AVIF", "RGBA"): (True, False),
    ("AVIF", "L"): (False, True),
    ("HEIF", "RGB"): (False, False),
    ("HEIF", "RGBA"): (True, False),
    ("HEIF", "L"): (False, True),
}
SOURCES = {key: _still(*key) for key in STILLS}


BOX = Size(24, 20)


def expected_mode(image_format: ImageFormat, alpha: bool, grey: bool) -> str:
    """What the derived file decodes as: alpha kept where the format has it, grey kept where the
    format stores one plane (a GIF is always a palette)."""
    if image_format is ImageFormat.GIF:
        return "P"
    if image_format is ImageFormat.JPEG:
        return "L" if grey else "RGB"
    if image_format is ImageFormat.WEBP:
        return "RGBA" if alpha else "RGB"
    if image_format is ImageFormat.AVIF:
        return "RGBA" if alpha else ("L" if grey else "RGB")
    return ("LA" if alpha else "L") if grey else ("RGBA" if alpha else "RGB")


def derive(
    data: bytes, image_format: ImageFormat, size: Size = BOX, mode: Mode = Mode.FILL, **settings: int
) -> bytes:
    out = io.BytesIO()
    PillowProcessor(**settings).derive(io.BytesIO(data), Rendition(size, mode, image_format), out)
    return out.getvalue()


@pytest.mark.parametrize("image_format", DERIVED_FORMATS, ids=lambda f: f.value)
@pytest.mark.parametrize("source", sorted(STILLS), ids=lambda key: "-".join(key))
def test_derive_turns_every_input_format_into_every_output_format(
    source: tuple[str, str], image_format: ImageFormat
) -> None:
    alpha, grey = STILLS[source]
    with Image.open(io.BytesIO(derive(SOURCES[source], image_format))) as result:
        assert result.format == image_format.value
        assert result.size == (24, 20)
        assert result.mode == expected_mode(image_format, alpha, grey)
        assert getattr(result, "n_frames", 1) == 1
        if image_format is ImageFormat.GIF and alpha:
            assert "transparency" in result.info
        result.load()


def test_derive_avif_keeps_semi_transparency() -> None:
    result = Image.open(io.BytesIO(derive(SOURCES[("PNG", "RGBA")], ImageFormat.AVIF)))
    low, high = result.getchannel("A").getextrema()  # type: ignore[misc]
    assert 120 <= low <= high <= 136  # alpha 128, within the encoder's rounding


def test_derive_avif_pads_with_transparent_margins() -> None:
    opaque = images.encode(images.gradient(48, 24), "PNG")
    result = Image.open(io.BytesIO(derive(opaque, ImageFormat.AVIF, Size(24, 24), Mode.PAD)))
    assert result.size == (24, 24)
    alpha = result.getchannel("A")
    assert alpha.getpixel((12, 1)) == 0  # the margin above the 24x12 picture
    assert alpha.getpixel((12, 12)) == 255


def test_derive_avif_of_a_grey_picture_stays_grey() -> None:
    result = Image.open(io.BytesIO(derive(SOURCES[("JPEG", "L")], ImageFormat.AVIF)))
    assert result.mode == "L"


@pytest.mark.parametrize(
    ("image_format", "setting"),
    [
        (ImageFormat.JPEG, "jpeg_quality"),
        (ImageFormat.WEBP, "webp_quality"),
        (ImageFormat.AVIF, "avif_quality"),
    ],
)
def test_derive_encodes_each_format_at_its_own_quality(image_format: ImageFormat, setting: str) -> None:
    photo = images.encode(images.gradient(200, 150).rotate(20), "PNG")
    low = derive(photo, image_format, Size(160, 120), **{setting: 20})
    high = derive(photo, image_format, Size(160, 120), **{setting: 95})
    assert len(low) < len(high)


def test_derive_avif_takes_its_speed() -> None:
    photo = images.encode(images.gradient(200, 150).rotate(20), "PNG")
    fast = derive(photo, ImageFormat.AVIF, Size(160, 120), avif_speed=10)
    slow = derive(photo, ImageFormat.AVIF, Size(160, 120), avif_speed=4)
    assert fast != slow  # another encoder search: other bytes for the same picture
