"""The quality guard of reduced copies: every rendition a copy is chosen for looks like the same
rendition made from the original, in every mode and output format, on a photo-like, a line-art/text
and a transparent picture (generated here). The copies are scaled down with the pictures (2400x1600
against 6000x4000: copies of 1200 and 320 px stand for 3000 and 800, one large and one small as they
are, ``reduction.LARGE_SIDE``), so the renditions exercise both.

What is compared, and why:

- the renditions as made, before the output format's conversion and encoder (the processor's
  ``before_encoding``): SSIM ≥ 0.98 and PSNR ≥ 38 dB, the issue's bounds, over white and black (the
  colour under a transparent pixel is invisible, its alpha is not). This is all the copy changes.
- the encoded renditions, each against the un-encoded one from the original: the one from the copy
  may lose fidelity only as a further 38 dB difference would (errors of power adding: the bound on
  its PSNR is ``-10 log10(10^(-e/10) + 10^(-3.8))``, ``e`` the original's own PSNR; 1 - SSIM adds
  0.02 likewise), less ``ENCODER_SPREAD_DB``: what the encoder's own fidelity varies by for an input
  ±1 in the last bit away (measured over these cases: lossy ≤ 0.18 dB, GIF ≤ 1.46 dB, as the palette
  and dither choices flip). The two encoded files are not compared with each other: given two
  pictures ±1 in the last bit apart (49.9 dB), the encoders make files 36.7 dB apart as JPEG and
  31.0 dB (SSIM 0.950) as GIF, a difference of the encoder, not of the copy.
"""

from __future__ import annotations

import functools
import io
import math
import random

import pytest
from PIL import Image, ImageDraw, ImageFilter

from pymager.adapters.imaging.reduction import LARGE_SIDE
from pymager.adapters.pillow import PillowProcessor
from pymager.domain import ImageFormat, Mode, Rendition, Size
from pymager.reduced import choose_copy
from tests.quality import psnr, ssim

SIDES = (1200, 320)
assert SIDES[0] >= LARGE_SIDE > SIDES[1]
SOURCE = (2400, 1600)
MIN_SSIM = 0.98
MIN_PSNR = 38.0
# (box, mode): each reduced by at least two from a copy, so each reads one (asserted below).
RENDITIONS = [
    (Size(80, 80), Mode.FILL),
    (Size(400, 300), Mode.FILL),
    (Size(100, 100), Mode.FIT),
    (Size(400, 400), Mode.FIT),
    (Size(100, 100), Mode.PAD),
    (Size(500, 300), Mode.PAD),
]
FORMATS = [ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.GIF, ImageFormat.WEBP, ImageFormat.AVIF]
ENCODER_SPREAD_DB = {ImageFormat.PNG: 0.0, ImageFormat.GIF: 1.5}
LOSSY_SPREAD_DB = 0.25
# The worst case of each picture so far: (SSIM, PSNR, case), un-encoded and encoded (its margin).
worst: dict[str, tuple[float, float, str]] = {}


def _photo(alpha: bool = False) -> bytes:
    """Smooth gradients, soft-edged shapes, lines, patches of fine texture (woven: a few pixels a
    period) and mild sensor-like grain."""
    rng = random.Random(f"reduced-{alpha}")
    small = (SOURCE[0] // 4, SOURCE[1] // 4)
    scene = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize(small),
            Image.radial_gradient("L").resize(small),
            Image.linear_gradient("L").rotate(90).resize(small),
        ],
    )
    draw = ImageDraw.Draw(scene)
    for _ in range(80):
        x, y, r = rng.randrange(small[0]), rng.randrange(small[1]), rng.randrange(4, 80)
        draw.ellipse(
            (x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256))
        )
    for _ in range(200):
        points = [(rng.randrange(small[0]), rng.randrange(small[1])) for _ in range(2)]
        draw.line(points, fill=(rng.randrange(256),) * 3, width=1)
    picture = scene.filter(ImageFilter.GaussianBlur(1.2)).resize(SOURCE, Image.Resampling.BICUBIC)
    texture = Image.new("L", (240, 240), 128)
    weave = ImageDraw.Draw(texture)
    for step in range(0, 240, 5):
        weave.line((step, 0, step, 240), fill=80, width=2)
        weave.line((0, step + 2, 240, step + 2), fill=180, width=1)
    texture = texture.filter(ImageFilter.GaussianBlur(0.8))
    for _ in range(6):
        x, y = rng.randrange(SOURCE[0] - 240), rng.randrange(SOURCE[1] - 240)
        tint = Image.new("RGB", (240, 240), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        patch = Image.blend(tint, texture.convert("RGB"), 0.5)
        picture.paste(patch, (x, y))
    grain = Image.frombytes("RGB", SOURCE, rng.randbytes(SOURCE[0] * SOURCE[1] * 3))
    picture = Image.blend(picture, grain, 0.08)
    out = io.BytesIO()
    if alpha:
        # A hard-edged rounded rectangle fading inside, and a soft (blurred) disc.
        mask = Image.new("L", SOURCE, 0)
        ImageDraw.Draw(mask).rounded_rectangle((200, 150, 1700, 1450), radius=300, fill=255)
        mask = Image.composite(Image.radial_gradient("L").resize(SOURCE).point(lambda v: 255 - v), mask, mask)
        disc = Image.new("L", SOURCE, 0)
        ImageDraw.Draw(disc).ellipse((1500, 400, 2300, 1200), fill=255)
        mask = Image.composite(Image.new("L", SOURCE, 255), mask, disc.filter(ImageFilter.GaussianBlur(40)))
        picture.putalpha(mask)
        picture.save(out, "PNG", compress_level=1)
    else:
        picture.save(out, "JPEG", quality=92)
    return out.getvalue()


def _line_art() -> bytes:
    """Text in several sizes, 1 to 9 px lines, a frame: what a diagram or a screenshot holds."""
    picture = Image.new("RGB", SOURCE, "white")
    draw = ImageDraw.Draw(picture)
    for step in range(0, SOURCE[0], 37):
        draw.line((step, 0, SOURCE[0] - step, SOURCE[1]), fill=(20, 20, 120), width=1 + step % 3)
    for row, size in zip(range(40, SOURCE[1], 90), (48, 32, 64, 24, 48, 40) * 3, strict=False):
        draw.text((40, row), "Reduced copies keep text legible " * 4, fill="black", font_size=size)
    draw.rectangle((600, 400, 1800, 1200), outline=(200, 0, 0), width=9)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


PICTURES = {
    "photo": functools.cache(_photo),
    "line_art": functools.cache(_line_art),
    "alpha": functools.cache(lambda: _photo(alpha=True)),
}


@functools.cache
def _copies(picture: str) -> tuple[Size, dict[int, bytes]]:
    outs = {side: io.BytesIO() for side in SIDES}
    info = PillowProcessor().identify(io.BytesIO(PICTURES[picture]()), outs)
    assert info.reduced == SIDES
    return Size(info.width, info.height), {side: out.getvalue() for side, out in outs.items()}


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA")


def _on(image: Image.Image, level: int) -> Image.Image:
    background = Image.new("RGBA", image.size, (level, level, level, 255))
    return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")


def _measure(reference: Image.Image, candidate: Image.Image) -> tuple[float, float]:
    """SSIM over white, and the lower PSNR over white and over black."""
    similarity = ssim(_on(reference, 255), _on(candidate, 255))
    decibels = min(psnr(_on(reference, level), _on(candidate, level)) for level in (255, 0))
    return similarity, decibels


def _with_more(decibels: float, more: float) -> float:
    """The PSNR of a picture ``decibels`` from a reference, given a further independent difference of
    ``more`` dB: the errors' powers add."""
    return -10 * math.log10(10 ** (-decibels / 10) + 10 ** (-more / 10))


def _keep_worst(key: str, similarity: float, decibels: float, case: str) -> None:
    if key not in worst or decibels < worst[key][1]:
        worst[key] = (similarity, decibels, case)
    print(f"worst {key}: SSIM {worst[key][0]:.4f}, PSNR {worst[key][1]:.1f} dB ({worst[key][2]})")


def _derive(
    picture: str, rendition: Rendition, copy: bytes | None, upright: Size
) -> tuple[Image.Image, bytes]:
    """The rendition as made (before its format's encoder) and as encoded, from the original or from
    ``copy``."""
    shown: list[Image.Image] = []
    processor = PillowProcessor(before_encoding=lambda picture: shown.append(picture.copy()))
    out = io.BytesIO()
    if copy is None:
        processor.derive(io.BytesIO(PICTURES[picture]()), rendition, out)
    else:
        processor.derive_reduced(io.BytesIO(copy), rendition, upright, out)
    (made,) = shown
    return made, out.getvalue()


@pytest.mark.parametrize("picture", list(PICTURES))
@pytest.mark.parametrize("image_format", FORMATS, ids=lambda f: f.value)
@pytest.mark.parametrize(("box", "mode"), RENDITIONS, ids=lambda v: str(v))
def test_a_rendition_from_a_reduced_copy_looks_like_the_one_from_the_original(
    picture: str, image_format: ImageFormat, box: Size, mode: Mode
) -> None:
    upright, copies = _copies(picture)
    rendition = Rendition(box, mode, image_format)
    side = choose_copy(rendition, upright, SIDES)
    assert side is not None, "the rendition must exercise a copy"
    reference, reference_file = _derive(picture, rendition, None, upright)
    candidate, candidate_file = _derive(picture, rendition, copies[side], upright)
    assert candidate.size == reference.size
    case = f"{picture} {box}-{mode.value}.{image_format.extension} from the {side} px copy"
    similarity, decibels = _measure(reference, candidate)
    print(f"\n{case}: as made SSIM {similarity:.4f}, PSNR {decibels:.1f} dB")
    _keep_worst(f"{picture} as made", similarity, decibels, case)
    # Encoded: each file's fidelity to the rendition as made from the original.
    own_ssim, own_psnr = _measure(reference, _decoded(reference_file))
    got_ssim, got_psnr = _measure(reference, _decoded(candidate_file))
    spread = ENCODER_SPREAD_DB.get(image_format, LOSSY_SPREAD_DB)
    allowed_psnr, allowed_ssim = _with_more(own_psnr, MIN_PSNR) - spread, own_ssim - (1 - MIN_SSIM)
    print(
        f"encoded: from the original SSIM {own_ssim:.4f}, PSNR {own_psnr:.1f} dB; "
        f"from the copy {got_ssim:.4f}, {got_psnr:.1f} dB (at least {allowed_ssim:.4f}, {allowed_psnr:.1f})"
    )
    _keep_worst(f"{picture} encoded, margin", got_ssim - allowed_ssim, got_psnr - allowed_psnr, case)
    assert similarity >= MIN_SSIM, case
    assert decibels >= MIN_PSNR, case
    assert got_ssim >= allowed_ssim, case
    assert got_psnr >= allowed_psnr, case
