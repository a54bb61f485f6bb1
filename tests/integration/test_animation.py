"""Animated originals (GIF, WebP, APNG, AVIF) through ``PillowProcessor``: GIF, WebP and AVIF results
keep every frame, its duration, the loop count and transparency, each frame resized as the first;
JPEG and PNG results are the first frame."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from pymager.adapters.imaging import animation
from pymager.adapters.pillow import PillowProcessor
from pymager.domain import ImageFormat, Mode, Rendition, Size
from pymager.errors import TooManyFrames
from tests import images

FRAMES = 5
# Consecutive frames differ (a GIF encoder merges equal neighbours into one longer frame).
COLOURS = [images.RED, images.GREEN, images.BLUE, images.YELLOW, images.RED]
DURATIONS = [40, 60, 80, 100, 120]
LOOP = 3
ANIMATED_OUTPUTS = [ImageFormat.GIF, ImageFormat.WEBP, ImageFormat.AVIF]
STILL_OUTPUTS = [ImageFormat.JPEG, ImageFormat.PNG]
SOURCES = ["GIF", "WEBP", "PNG", "AVIF"]  # PNG: an APNG
CLEAR = 8  # the most alpha a clear pixel keeps through a lossy alpha plane (AVIF)


BOX = Size(24, 20)


def frame(index: int, alpha: bool) -> Image.Image:
    """48x32: the left quarter clear (or grey), the rest in frame ``index``'s colour."""
    picture = Image.new("RGBA", (48, 32), (0, 0, 0, 0) if alpha else (128, 128, 128, 255))
    picture.paste((*COLOURS[index], 255), (12, 0, 48, 32))
    return picture if alpha else picture.convert("RGB")


def animated(image_format: str, alpha: bool = True, frames: int = FRAMES, **params: object) -> bytes:
    """An animation of ``frames`` frames in ``image_format`` (PNG: APNG), DURATIONS, looped LOOP times
    (AVIF: Pillow writes no loop count)."""
    pictures = [frame(index % FRAMES, alpha) for index in range(frames)]
    durations = [DURATIONS[index % FRAMES] for index in range(frames)]
    options: dict[str, object] = {"save_all": True, "append_images": pictures[1:], "duration": durations}
    if image_format != "AVIF":
        options["loop"] = LOOP
    if image_format == "GIF" and alpha:
        options["disposal"] = 2
    if image_format == "WEBP":  # lossy: libwebp drops the alpha flag of this lossless animation
        options["quality"] = 100
    options.update(params)
    return images.encode(pictures[0], image_format, **options)


def derive(
    data: bytes,
    image_format: ImageFormat,
    mode: Mode = Mode.FILL,
    size: Size = BOX,
    processor: PillowProcessor | None = None,
) -> Image.Image:
    out = io.BytesIO()
    (processor or PillowProcessor()).derive(io.BytesIO(data), Rendition(size, mode, image_format), out)
    return Image.open(io.BytesIO(out.getvalue()))


def frames_of(image: Image.Image) -> list[Image.Image]:
    """Every frame of ``image`` as RGBA, with its duration in ``info``."""
    decoded = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()
        rgba = image.convert("RGBA")
        rgba.info["duration"] = image.info.get("duration")
        decoded.append(rgba)
    return decoded


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def avif_repeats_forever(data: bytes) -> bool:
    """Whether an AVIF sequence's edit list (``moov/trak/edts/elst``) has its repeat flag set."""
    at = data.index(b"elst")
    (version_flags,) = struct.unpack(">I", data[at + 4 : at + 8])
    return bool(version_flags & 1)


# Where to look in each mode's result (24x20 asked of a 48x32 picture whose left quarter is clear):
# (size, a clear pixel, a coloured pixel, a margin pixel or None).
GEOMETRY = {
    Mode.FILL: ((24, 20), (1, 10), (18, 10), None),  # 30x20 cropped by 3 on each side
    Mode.FIT: ((24, 16), (1, 8), (18, 8), None),
    Mode.PAD: ((24, 20), (1, 10), (18, 10), (18, 0)),  # the 24x16 picture 2 below the top
}


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("image_format", ANIMATED_OUTPUTS, ids=lambda f: f.value)
@pytest.mark.parametrize("source", SOURCES)
def test_derive_animates_every_frame_with_its_duration_and_transparency(
    source: str, image_format: ImageFormat, mode: Mode
) -> None:
    size, clear, coloured, margin = GEOMETRY[mode]
    result = derive(animated(source), image_format, mode)
    assert result.format == image_format.value
    assert result.size == size
    decoded = frames_of(result)
    assert len(decoded) == FRAMES
    assert [picture.info["duration"] for picture in decoded] == DURATIONS
    for index, picture in enumerate(decoded):
        assert picture.size == size
        assert close_to(picture.getpixel(coloured), (*COLOURS[index], 255)), index  # type: ignore[arg-type]
        assert picture.getpixel(clear)[3] <= CLEAR, index  # type: ignore[index]
        if margin is not None:
            assert picture.getpixel(margin)[3] <= CLEAR, index  # type: ignore[index]


@pytest.mark.parametrize("image_format", [ImageFormat.GIF, ImageFormat.WEBP], ids=lambda f: f.value)
@pytest.mark.parametrize("source", SOURCES)
def test_derive_keeps_the_loop_count(source: str, image_format: ImageFormat) -> None:
    result = derive(animated(source), image_format)
    assert result.info["loop"] == (0 if source == "AVIF" else LOOP)  # an AVIF sequence repeats forever


@pytest.mark.parametrize("source", SOURCES)
def test_derive_avif_animation_repeats_forever(source: str) -> None:
    """Pillow's AVIF saver takes no loop count; libavif marks the sequence as repeating."""
    out = io.BytesIO()
    rendition = Rendition(Size(24, 20), Mode.FILL, ImageFormat.AVIF)
    PillowProcessor().derive(io.BytesIO(animated(source)), rendition, out)
    assert avif_repeats_forever(out.getvalue())


def test_derive_gif_of_a_gif_played_once_is_played_once() -> None:
    once = animated("GIF", loop=None)
    assert "loop" not in Image.open(io.BytesIO(once)).info
    assert "loop" not in derive(once, ImageFormat.GIF).info
    assert derive(once, ImageFormat.WEBP).info["loop"] == 1


@pytest.mark.parametrize("image_format", ANIMATED_OUTPUTS, ids=lambda f: f.value)
@pytest.mark.parametrize("source", SOURCES)
def test_derive_animates_opaque_originals_without_transparency(
    source: str, image_format: ImageFormat
) -> None:
    decoded = frames_of(derive(animated(source, alpha=False), image_format))
    assert len(decoded) == FRAMES
    for index, picture in enumerate(decoded):
        assert close_to(picture.getpixel((1, 10)), (128, 128, 128, 255)), index  # type: ignore[arg-type]
        assert close_to(picture.getpixel((18, 10)), (*COLOURS[index], 255)), index  # type: ignore[arg-type]


@pytest.mark.parametrize("image_format", STILL_OUTPUTS, ids=lambda f: f.value)
@pytest.mark.parametrize("source", SOURCES)
def test_derive_still_formats_take_the_first_frame(source: str, image_format: ImageFormat) -> None:
    result = derive(animated(source), image_format)
    assert getattr(result, "n_frames", 1) == 1
    assert result.size == (24, 20)
    assert close_to(result.convert("RGB").getpixel((18, 10)), images.RED)  # type: ignore[arg-type]


def test_derive_orients_and_converts_every_frame_as_a_still() -> None:
    """Frame 3 of an animated WebP tagged with EXIF orientation 6 and a Display P3 profile comes out as
    the same picture would alone."""
    profile = images.rgb_profile(images.DISPLAY_P3)
    pictures = [images.stored(images.corner_markers(48, 32), 6).convert("RGB") for _ in range(FRAMES)]
    for index, picture in enumerate(pictures):
        picture.paste((40 * index, 200 - 30 * index, 90), (4, 4, 12, 12))
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = {"exif": exif.tobytes(), "icc_profile": profile, "lossless": True}
    data = images.encode(
        pictures[0], "WEBP", save_all=True, append_images=pictures[1:], duration=DURATIONS, **tagged
    )
    alone = images.encode(pictures[3], "WEBP", **tagged)
    fit = Size(24, 24)
    result = frames_of(derive(data, ImageFormat.WEBP, Mode.FIT, fit))
    expected = derive(alone, ImageFormat.PNG, Mode.FIT, fit).convert("RGBA")
    assert result[3].size == expected.size == (24, 16)  # stored 32x48, upright 48x32
    for point in [(2, 2), (21, 2), (2, 13), (21, 13), (12, 8), (18, 5)]:
        assert close_to(result[3].getpixel(point), expected.getpixel(point), 16), point  # type: ignore[arg-type]


def test_derive_refuses_an_animation_over_max_derived_frames() -> None:
    processor = PillowProcessor(max_derived_frames=FRAMES - 1)
    with pytest.raises(TooManyFrames) as refused:
        derive(animated("GIF"), ImageFormat.WEBP, processor=processor)
    assert "max_derived_frames" in refused.value.detail
    assert f"{FRAMES} frames" in refused.value.detail
    assert derive(animated("GIF"), ImageFormat.PNG, processor=processor).size == (24, 20)  # still served


def test_derive_allows_an_animation_of_exactly_max_derived_frames() -> None:
    processor = PillowProcessor(max_derived_frames=FRAMES)
    assert len(frames_of(derive(animated("GIF"), ImageFormat.GIF, processor=processor))) == FRAMES


def test_max_derived_frames_defaults_to_max_frames() -> None:
    assert PillowProcessor().max_derived_frames == PillowProcessor().limits.max_frames


def test_frames_makes_each_frame_only_when_the_encoder_reaches_it() -> None:
    made: list[int] = []
    with Image.open(io.BytesIO(animated("GIF"))) as source:

        def make(decoded: Image.Image) -> Image.Image:
            made.append(decoded.tell())
            return decoded.convert("RGB").resize((4, 4))

        durations = animation.Durations(FRAMES)
        frames = animation.Frames(source, FRAMES, make, durations)
        assert made == [1]  # frame 0 is the caller's; the next is made on creation, not all of them
        assert frames.n_frames == FRAMES - 1
        frames.seek(1)
        assert made == [1, 2]
        assert durations[2] == DURATIONS[2]
        with pytest.raises(KeyError):
            durations[3]  # not decoded yet: no guess
        with pytest.raises(ValueError, match="in order"):
            frames.seek(3)
        frames.seek(2)
        frames.seek(3)
        with pytest.raises(EOFError):
            frames.seek(4)
    assert made == [1, 2, 3, 4]
