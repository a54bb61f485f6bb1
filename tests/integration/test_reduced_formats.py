"""What reduced copies are stored as (``pymager.adapters.imaging.reduction``): large copies compactly
(JPEG 4:2:0, PNG), small ones for detail and decoding speed (JPEG 4:4:4, uncompressed TIFF); copies an
earlier pymager stored (JPEG 4:4:4, PNG) are still derived from; the TIFF decoder is for copies only."""

from __future__ import annotations

import io

import pytest
from PIL import Image, JpegImagePlugin

from pymager.adapters.imaging import reduction
from pymager.adapters.imaging.reduction import LARGE_SIDE
from pymager.adapters.pillow import PillowProcessor
from pymager.domain import ImageFormat, Mode, Rendition, Size
from pymager.errors import UnsupportedImage

SIDES = (1200, 320)
assert SIDES[0] >= LARGE_SIDE > SIDES[1]


def _picture(mode: str) -> Image.Image:
    return Image.effect_noise((1800, 1200), 40).convert(mode)


def _copies(picture: Image.Image, image_format: str) -> dict[int, Image.Image]:
    upload = io.BytesIO()
    picture.save(upload, image_format)
    outs = {side: io.BytesIO() for side in SIDES}
    info = PillowProcessor().identify(upload, outs)
    assert info.reduced == SIDES
    return {side: Image.open(io.BytesIO(out.getvalue())) for side, out in outs.items()}


def test_a_photo_keeps_a_large_copy_subsampled_and_a_small_one_in_full_chroma() -> None:
    copies = _copies(_picture("RGB"), "JPEG")
    assert [copies[side].format for side in SIDES] == ["JPEG", "JPEG"]
    assert JpegImagePlugin.get_sampling(copies[1200]) == 2  # 4:2:0
    assert JpegImagePlugin.get_sampling(copies[320]) == 0  # 4:4:4


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA"])
def test_a_lossless_original_keeps_a_large_png_copy_and_a_small_uncompressed_tiff(mode: str) -> None:
    copies = _copies(_picture(mode), "PNG")
    assert copies[1200].format == "PNG"
    assert (copies[320].format, copies[320].info.get("compression")) == ("TIFF", "raw")
    assert copies[320].mode == mode


def test_a_copy_stored_as_an_earlier_pymager_did_is_derived_from_as_its_pixels_say() -> None:
    copies = _copies(_picture("RGBA"), "PNG")
    small = copies[320]
    small.load()
    as_before = io.BytesIO()
    small.save(as_before, "PNG", compress_level=1)  # earlier pymager: every lossless copy a PNG
    rendition = Rendition(Size(80, 80), Mode.FILL, ImageFormat.PNG)
    made = []
    for copy in (as_before.getvalue(), _encoded(small, "TIFF")):
        out = io.BytesIO()
        PillowProcessor().derive_reduced(io.BytesIO(copy), rendition, Size(1800, 1200), out)
        made.append(Image.open(io.BytesIO(out.getvalue())).tobytes())
    assert made[0] == made[1]


def test_an_uploaded_tiff_is_still_refused() -> None:
    with pytest.raises(UnsupportedImage):
        PillowProcessor().identify(io.BytesIO(_encoded(_picture("RGB"), "TIFF")))


def _encoded(picture: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    picture.save(out, image_format)
    return out.getvalue()


@pytest.mark.parametrize(
    ("box", "mode", "decoded"),
    [
        (Size(1024, 768), Mode.FILL, (1500, 1000)),  # 2.6 copy pixels an output pixel: 1/2 scale
        (Size(600, 600), Mode.FIT, (750, 500)),  # 5: 1/4
        (Size(1400, 900), Mode.FIT, (3000, 2000)),  # 2.1: whole, DRAFT_GAP kept
    ],
)
def test_a_large_jpeg_copy_is_decoded_at_the_dct_scale_the_rendition_leaves_room_for(
    box: Size, mode: Mode, decoded: tuple[int, int]
) -> None:
    copy = Image.open(io.BytesIO(_encoded(Image.new("RGB", (3000, 2000)), "JPEG")))
    extent = reduction.draft(copy, Rendition(box, mode, ImageFormat.JPEG), Size(6000, 4000))
    copy.load()
    assert copy.size == decoded
    assert extent == (float(decoded[0]), float(decoded[1]))


def test_a_small_jpeg_copy_is_decoded_whole() -> None:
    copy = Image.open(io.BytesIO(_encoded(Image.new("RGB", (800, 533)), "JPEG")))
    reduction.draft(copy, Rendition(Size(100, 100), Mode.FILL, ImageFormat.JPEG), Size(6000, 4000))
    copy.load()
    assert copy.size == (800, 533)
