"""Focal-point detection against generated scenes: a fill crop around the detected point keeps the
subject despite distractors, and pictures without a subject keep the centre crop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from PIL import Image, ImageDraw

from pymager.adapters.focus import detect_focus
from pymager.domain import CENTRE, Focus

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), in pixels
LANDSCAPE = (256, 170)
PORTRAIT = (170, 256)


@dataclass(frozen=True)
class Scene:
    image: Image.Image
    subject: Box
    aspects: tuple[tuple[int, int], ...]  # fill crops (W:H) the subject must survive


def crop_window(size: tuple[int, int], focus: Focus, aspect: tuple[int, int]) -> tuple[float, ...]:
    """The part of a ``size`` picture a fill crop of ``aspect`` keeps, as the pipeline computes it:
    cover-scale, then the window of the target's aspect centred on the point, clamped to the picture."""
    width, height = size
    crop_width = min(width, height * aspect[0] / aspect[1])
    crop_height = min(height, width * aspect[1] / aspect[0])
    left = min(max(focus.x * width - crop_width / 2, 0.0), width - crop_width)
    top = min(max(focus.y * height - crop_height / 2, 0.0), height - crop_height)
    return left, top, left + crop_width, top + crop_height


def keeps(window: tuple[float, ...], box: Box) -> bool:
    return window[0] <= box[0] and window[1] <= box[1] and box[2] <= window[2] and box[3] <= window[3]


def assert_fill_keeps_subject(scene: Scene, focus: Focus) -> None:
    for aspect in scene.aspects:
        # The scene is only a test if a centre crop would cut its subject.
        assert not keeps(crop_window(scene.image.size, CENTRE, aspect), scene.subject)
        window = crop_window(scene.image.size, focus, aspect)
        assert keeps(window, scene.subject), f"{aspect}: {focus} keeps {window}, not {scene.subject}"


# --- scene parts ---------------------------------------------------------------------------------


def texture(
    rng: random.Random, size: tuple[int, int], block: int, low: int = 0, high: int = 255
) -> Image.Image:
    """Random-coloured square blocks of ``block`` pixels, each channel in [low, high]: a detailed subject."""
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for top in range(0, size[1], block):
        for left in range(0, size[0], block):
            colour = (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))
            draw.rectangle((left, top, left + block - 1, top + block - 1), fill=colour)
    return image


def noise(rng: random.Random, size: tuple[int, int], mean: int, sigma: float) -> Image.Image:
    """Grey pixel noise (Gaussian, clipped) as RGB: texture everywhere, structure nowhere."""
    count = size[0] * size[1]
    data = bytes(min(255, max(0, round(rng.gauss(mean, sigma)))) for _ in range(count))
    return Image.frombytes("L", size, data).convert("RGB")


def gradient(size: tuple[int, int]) -> Image.Image:
    """A smooth diagonal colour gradient."""
    horizontal = Image.linear_gradient("L").rotate(90).resize(size)
    vertical = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (horizontal, vertical, Image.new("L", size, 90)))


def place(background: Image.Image, subject: Image.Image, at: tuple[int, int]) -> Box:
    background.paste(subject, at)
    return at[0], at[1], at[0] + subject.width, at[1] + subject.height


# --- scenes --------------------------------------------------------------------------------------


def subject_on_flat(
    size: tuple[int, int], at: tuple[int, int], aspects: tuple[tuple[int, int], ...]
) -> Scene:
    image = Image.new("RGB", size, (40, 90, 160))
    subject = place(image, texture(random.Random(1), (48, 48), 4), at)
    return Scene(image, subject, aspects)


def subject_on_gradient() -> Scene:
    image = gradient(LANDSCAPE)
    subject = place(image, texture(random.Random(2), (44, 56), 4), (196, 40))
    return Scene(image, subject, ((1, 1), (4, 5)))


def subject_beside_bright_patch() -> Scene:
    image = Image.new("RGB", LANDSCAPE, (30, 30, 30))
    ImageDraw.Draw(image).rectangle((8, 20, 89, 149), fill=(255, 255, 255))  # larger, brighter, flat
    subject = place(image, texture(random.Random(3), (44, 44), 4, 70, 130), (190, 70))
    return Scene(image, subject, ((1, 1),))


def two_subjects_of_different_detail() -> Scene:
    image = Image.new("RGB", LANDSCAPE, (200, 190, 170))
    place(image, texture(random.Random(4), (50, 50), 25), (14, 60))  # four big blocks: little detail
    subject = place(image, texture(random.Random(5), (50, 50), 3), (192, 60))
    return Scene(image, subject, ((1, 1),))


def structured_subject_in_noise() -> Scene:
    rng = random.Random(6)
    image = noise(rng, LANDSCAPE, 128, 24)
    checks = Image.new("RGB", (48, 48), (255, 255, 255))
    draw = ImageDraw.Draw(checks)
    for top in range(0, 48, 6):
        for left in range(0, 48, 6):
            if (top + left) // 6 % 2:
                draw.rectangle((left, top, left + 5, top + 5), fill=(0, 0, 0))
    subject = place(image, checks, (12, 116))
    return Scene(image, subject, ((1, 1), (2, 1)))


def subject_on_transparency() -> Scene:
    """An opaque subject on a transparent background whose hidden colour is busy noise."""
    rng = random.Random(7)
    image = noise(rng, LANDSCAPE, 128, 60).convert("RGBA")
    image.putalpha(0)
    subject = place(image, texture(rng, (48, 48), 4).convert("RGBA"), (200, 20))
    return Scene(image, subject, ((1, 1), (2, 1)))


SCENES: dict[str, Callable[[], Scene]] = {
    "left third": lambda: subject_on_flat(LANDSCAPE, (14, 60), ((1, 1), (3, 4))),
    "right third": lambda: subject_on_flat(LANDSCAPE, (196, 70), ((1, 1), (3, 4))),
    "top": lambda: subject_on_flat(PORTRAIT, (60, 10), ((1, 1), (4, 3))),
    "bottom right corner": lambda: subject_on_flat(LANDSCAPE, (204, 118), ((1, 1), (2, 1))),
    "gradient": subject_on_gradient,
    "bright flat patch": subject_beside_bright_patch,
    "two subjects": two_subjects_of_different_detail,
    "noise everywhere": structured_subject_in_noise,
    "transparency": subject_on_transparency,
}


@pytest.mark.parametrize("name", SCENES)
def test_fill_crop_around_detected_focus_keeps_subject(name: str) -> None:
    scene = SCENES[name]()
    assert_fill_keeps_subject(scene, detect_focus(scene.image))


def as_mode(image: Image.Image, mode: str) -> Image.Image:
    if mode == "P":
        return image.quantize(64)  # an adaptive palette, as a GIF would carry
    if mode == "P dithered":  # the web palette with Floyd-Steinberg dithering: noise in every flat area
        return image.convert("P")
    if mode == "I;16":  # 16-bit grey: the 8-bit value times 257, as a 16-bit PNG would hold
        return image.convert("L").convert("I").point(lambda value: value * 257).convert("I;16")
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["L", "P", "P dithered", "I;16", "LA", "CMYK", "RGBA"])
def test_detection_keeps_subject_in_other_modes(mode: str) -> None:
    scene = subject_beside_bright_patch()
    converted = as_mode(scene.image, mode)
    assert converted.mode == mode.split()[0]
    assert_fill_keeps_subject(scene, detect_focus(converted))


def test_sixteen_bit_grey_finds_the_eight_bit_point() -> None:
    grey = structured_subject_in_noise().image.convert("L")
    eight, sixteen = detect_focus(grey), detect_focus(as_mode(grey, "I;16"))
    assert (sixteen.x, sixteen.y) == pytest.approx((eight.x, eight.y), abs=0.02)


def test_palette_transparency_is_never_the_subject() -> None:
    """Sixteen busy but fully transparent palette entries (a tRNS chunk) everywhere, and an opaque
    subject drawn with the other entries."""
    rng = random.Random(8)
    image = Image.frombytes(
        "P", LANDSCAPE, bytes(rng.randrange(16) for _ in range(LANDSCAPE[0] * LANDSCAPE[1]))
    )
    image.putpalette([rng.randrange(256) for _ in range(256 * 3)])
    image.info["transparency"] = bytes([0] * 16 + [255] * 240)
    draw = ImageDraw.Draw(image)
    left, top = 18, 20
    for y in range(top, top + 48, 4):
        for x in range(left, left + 48, 4):
            draw.rectangle((x, y, x + 3, y + 3), fill=rng.randrange(16, 256))
    scene = Scene(image, (left, top, left + 48, top + 48), ((1, 1), (2, 1)))
    assert_fill_keeps_subject(scene, detect_focus(image))


# --- no subject ----------------------------------------------------------------------------------


def solid(mode: str, size: tuple[int, int] = LANDSCAPE) -> Image.Image:
    return as_mode(Image.new("RGB", size, (180, 40, 70)), mode)


def vignette(size: tuple[int, int]) -> Image.Image:
    """A smooth radial gradient: bright centre, darker corners (quadratic, so no kink at the centre)."""
    distance = Image.radial_gradient("L").resize(size)
    return distance.point([255 - value * value // 255 for value in range(256)])


FLAT: dict[str, Callable[[], Image.Image]] = {
    "solid RGB": lambda: solid("RGB"),
    "solid L": lambda: solid("L"),
    "solid P": lambda: solid("P"),
    "solid I;16": lambda: solid("I;16"),
    "solid CMYK": lambda: solid("CMYK"),
    "transparent with hidden noise": lambda: subject_on_transparency().image.crop((0, 0, 180, 170)),
    "diagonal gradient": lambda: gradient(LANDSCAPE),
    "diagonal gradient, dithered palette": lambda: as_mode(gradient(LANDSCAPE), "P dithered"),
    "horizontal gradient, 16-bit": lambda: as_mode(Image.linear_gradient("L").rotate(90), "I;16"),
    "steep gradient, tiny picture": lambda: Image.linear_gradient("L").resize((24, 16)),
    "radial vignette": lambda: vignette(PORTRAIT),
    "one pixel": lambda: Image.new("RGB", (1, 1), (255, 0, 0)),
    "two-pixel strip": lambda: Image.new("L", (256, 2), 7),
}


@pytest.mark.parametrize("name", FLAT)
def test_picture_without_subject_keeps_exact_centre(name: str) -> None:
    assert detect_focus(FLAT[name]()) == CENTRE


# --- properties ----------------------------------------------------------------------------------


def test_detection_is_deterministic() -> None:
    scene = structured_subject_in_noise()
    first = detect_focus(scene.image)
    assert detect_focus(scene.image.copy()) == first
    assert detect_focus(structured_subject_in_noise().image) == first


@pytest.mark.parametrize(
    "mode", ["1", "F", "I", "I;16B", "LA", "La", "LAB", "HSV", "PA", "RGBX", "RGBa", "YCbCr"]
)
def test_detection_keeps_subject_in_every_mode(mode: str) -> None:
    scene = SCENES["left third"]()
    if mode == "1":  # thresholded: a dithered bilevel picture is noise everywhere, so it keeps the centre
        converted = scene.image.convert("1", dither=Image.Dither.NONE)
    elif mode in {"La", "RGBa", "PA"}:  # made only from their straight-alpha siblings
        converted = scene.image.convert("RGBA").convert(mode)
    else:  # "I" and "I;16B" then hold 8-bit values, as Pillow's conversions make them
        converted = scene.image.convert(mode)
    assert converted.mode == mode
    assert_fill_keeps_subject(scene, detect_focus(converted))


def test_detection_time_on_a_256_pixel_copy(capsys: pytest.CaptureFixture[str]) -> None:
    image = structured_subject_in_noise().image
    detect_focus(image)
    calls = 200
    started = time.perf_counter()
    for _ in range(calls):
        detect_focus(image)
    per_call = (time.perf_counter() - started) / calls
    with capsys.disabled():
        print(
            f"\ndetect_focus on {image.width}x{image.height} {image.mode}: {per_call * 1000:.2f} ms per call"
        )
