"""The Pillow image processor: identify (check and fully decode) originals and derive renditions.

A derivation is one list of steps, each in its own module of ``pymager.adapters.imaging``:

1. open        only the accepted decoders, under the decoding limits (``decoding``)
2. plan        what the mode needs of the decoder, then the one resize (``geometry``)
3. load        the first frame; a JPEG scaled by 1/2, 1/4 or 1/8 in the DCT domain (``draft``)
4. working     a mode that resamples, CMYK kept when its profile will convert it (``modes``)
5. resize      ONE resize of the stored pixels: the crop box and the scale at once
6. orient      the EXIF orientation, applied to the small result (``orientation``)
7. colour      the embedded ICC profile to sRGB, on the small result (``colour``)
8. pad         centre on the canvas (``output``)
9. encode      to what the format stores, without metadata or profile (``output``)

A reduced copy (``reduction``, made by ``identify``) is derived from with steps 1-5, 8 and 9: it is
upright and sRGB already (``derive_reduced``).

An animated original asked as GIF, WebP or AVIF keeps every frame: steps 4 to 8 run on each frame in
turn as the encoder asks for it (``animation``), with the first frame's geometry. JPEG and PNG get the
first frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import BinaryIO

from PIL import Image, ImageFile
from zope.interface import implementer

from pymager.adapters.imaging import animation, colour, geometry, modes, orientation, output, reduction
from pymager.adapters.imaging.decoding import (
    DERIVE_DECODER_BLOCK,
    IDENTIFY_DECODER_BLOCK,
    check_whole_container,
    decode_all_frames,
    decoding,
    open_image,
    traits,
    verify_png,
)
from pymager.adapters.imaging.geometry import REDUCING_GAP
from pymager.adapters.imaging.placeholder import placeholder
from pymager.domain import DecodeLimits, Focus, ImageFormat, ImageInfo, Rendition, Size
from pymager.errors import TooManyFrames
from pymager.interfaces import IImageProcessor
from pymager.reduced import applicable_sides

# The originals whose reduced copies are lossless too (``reduction``).
LOSSLESS_FORMATS = frozenset({ImageFormat.PNG, ImageFormat.GIF})
# The long side of the copy focus detection looks at.
FOCUS_SIDE = 256
# The modes Image.reduce takes; the others (palette, bilevel, 16-bit) are sampled for focus detection.
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F", "PA"})


@implementer(IImageProcessor)
class PillowProcessor:
    """``IImageProcessor`` on Pillow. Thread-safe: it keeps no state besides its settings (the colour
    transforms it caches are shared and safe to share)."""

    def __init__(
        self,
        jpeg_quality: int = 85,
        limits: DecodeLimits | None = None,
        pad_colour: tuple[int, int, int] = (255, 255, 255),
        detect_focus: bool = True,
        *,
        webp_quality: int = output.Encoding.webp_quality,
        avif_quality: int = output.Encoding.avif_quality,
        avif_speed: int = output.Encoding.avif_speed,
        max_derived_frames: int | None = None,
        before_encoding: Callable[[Image.Image], None] | None = None,
    ) -> None:
        self.encoding = output.Encoding(jpeg_quality, webp_quality, avif_quality, avif_speed)
        self.limits = limits or DecodeLimits()
        self.pad_colour = pad_colour
        self.detect_focus = detect_focus
        # An animation longer than this is refused as an animated format (TooManyFrames).
        self.max_derived_frames = self.limits.max_frames if max_derived_frames is None else max_derived_frames
        # Shown each still rendition as made, before the format's conversion and its encoder: what the
        # quality guard of reduced copies compares, apart from the encoders' own noise.
        self.before_encoding = before_encoding

    def identify(self, source: BinaryIO, reduced: Mapping[int, BinaryIO] | None = None) -> ImageInfo:
        check_whole_container(source, self.limits)
        small: Image.Image | None = None
        upright = None
        copies: list[tuple[int, Image.Image]] = []
        with open_image(source, self.limits, IDENTIFY_DECODER_BLOCK) as image:
            image_format = ImageFormat(image.format)
            width, height = image.size  # as stored, before any draft scaling
            image_traits = traits(image)
            profile = colour.embedded_profile(image)
            sides = applicable_sides(Size(width, height), reduced or {})
            sides = reduction.affordable_sides((width, height), sides, image_format is ImageFormat.JPEG)
            # The check's own decode yields the copies: a JPEG at the DCT scale the largest one needs.
            at_least = reduction.draft_size((width, height), sides)
            with decoding(image_format):
                self.limits.check_frames(getattr(image, "n_frames", 1), width, height)
                for index, frame in enumerate(decode_all_frames(image, at_least)):
                    if index == 0:
                        exif_orientation = orientation.orientation(frame)
                        upright = Size(*orientation.to_stored_size((width, height), exif_orientation))
                        small = orientation.upright(_small_copy(frame), exif_orientation)
                        jpeg = image_format is ImageFormat.JPEG
                        last = not image_traits.animated  # no next frame will be decoded over it
                        copies = reduction.make(frame, upright, exif_orientation, profile, sides, jpeg, last)
            # Outside ``decoding`` (writing them is no decoding), while the image is open: a still's
            # copy of the decoded size is the decoded picture itself (24 MB for a 24 MP JPEG).
            lossless = image_format in LOSSLESS_FORMATS
            for side, picture in copies:
                reduction.encode(picture, (reduced or {})[side], lossless)
        if image_format is ImageFormat.PNG:
            verify_png(source, self.limits)
        # Outside ``decoding``: a failure in detection is the server's, not a corrupt upload.
        focus = None if small is None or not self.detect_focus else _detect_focus(small)
        shown = None if small is None else placeholder(small, profile)
        made = tuple(side for side, _ in copies)
        return ImageInfo(image_format, width, height, focus, image_traits, upright, shown, made)

    def derive(self, source: BinaryIO, rendition: Rendition, out: BinaryIO) -> Size:
        with open_image(source, self.limits, DERIVE_DECODER_BLOCK) as image:
            image_format = ImageFormat(image.format)
            count = animation.frame_count(image) if rendition.format.animates else 1
            if count > self.max_derived_frames:
                raise TooManyFrames(count, self.max_derived_frames, rendition.format.value)
            profile = colour.embedded_profile(image)
            keep_cmyk = count == 1 and colour.converts_cmyk(image, profile)
            with decoding(image_format):
                exif_orientation = _load_first_frame(image, rendition)
                picture = modes.working_copy(image, keep_cmyk=keep_cmyk)
            alpha = picture.mode in ("LA", "RGBA")
            steps = _FrameSteps(self, rendition, image.size, exif_orientation, profile)
            if count == 1:
                first = steps.resize(picture)
            else:
                first = steps.finish(steps.resize(_animation_mode(picture, alpha)))
                durations = animation.Durations(count)
                durations.record(0, image.info.get("duration", 0))
                loop = animation.loop_count(image)

                def make(frame: Image.Image) -> Image.Image:
                    return steps.finish(steps.resize(_animation_mode(modes.working_copy(frame), alpha)))

                frames = animation.Frames(image, count, make, durations)
                plan = output.Animation(durations, loop, alpha)
                output.encode(first, rendition.format, self.encoding, out, frames, plan)
                return Size(*first.size)
        return self._encode(steps.shown(first), rendition, out)

    def derive_reduced(self, source: BinaryIO, rendition: Rendition, upright: Size, out: BinaryIO) -> Size:
        with open_image(source, self.limits, DERIVE_DECODER_BLOCK, reduction.COPY_FORMATS) as image:
            with decoding(f"{image.format} copy"):
                extent = reduction.draft(image, rendition, upright)
                image.load()
                picture = modes.working_copy(image)
            plan = geometry.plan_reduced(rendition, (upright.width, upright.height), extent)
            resized = picture.resize(
                plan.size, Image.Resampling.LANCZOS, box=plan.box, reducing_gap=REDUCING_GAP
            )
        padded = output.pad(resized, plan.canvas, rendition.format, self.pad_colour)
        return self._encode(padded, rendition, out)

    def _encode(self, shown: Image.Image, rendition: Rendition, out: BinaryIO) -> Size:
        """Convert a still rendition (a working mode, sRGB, padded) to what its format stores, and
        encode it."""
        if self.before_encoding is not None:
            self.before_encoding(shown)
        finished = output.for_output(shown, rendition.format)
        output.encode(finished, rendition.format, self.encoding, out)
        return Size(*finished.size)


class _FrameSteps:
    """Steps 5 to 8 with what one derivation decided: the resize and what follows it, for a still or
    for each frame of an animation."""

    def __init__(
        self,
        processor: PillowProcessor,
        rendition: Rendition,
        original: tuple[int, int],
        exif_orientation: int,
        profile: colour.Profile | None,
    ) -> None:
        self.rendition = rendition
        self.original = original
        self.orientation = exif_orientation
        self.profile = profile
        self.pad_colour = processor.pad_colour

    def resize(self, picture: Image.Image) -> Image.Image:
        """The one resize (while the original is open: the pixels may still be its decoder's)."""
        self.plan = geometry.plan(self.rendition, self.original, picture.size, self.orientation)
        return picture.resize(
            self.plan.size, Image.Resampling.LANCZOS, box=self.plan.box, reducing_gap=REDUCING_GAP
        )

    def shown(self, picture: Image.Image) -> Image.Image:
        """Orient, to sRGB and pad."""
        picture = orientation.upright(picture, self.orientation)
        picture = colour.to_srgb(picture, self.profile)
        return output.pad(picture, self.plan.canvas, self.rendition.format, self.pad_colour)

    def finish(self, picture: Image.Image) -> Image.Image:
        """``shown``, then converted to what the format stores."""
        return output.for_output(self.shown(picture), self.rendition.format)


def _animation_mode(picture: Image.Image, alpha: bool) -> Image.Image:
    """One mode for every frame (a GIF's first frame is a palette, the next ones RGB or RGBA): RGBA
    when the first frame has transparency, else RGB (grey too: the savers take the first frame's
    mode for all, and the AVIF saver looks at every frame when the first is grey)."""
    mode = "RGBA" if alpha else "RGB"
    return picture if picture.mode == mode else picture.convert(mode)


def _load_first_frame(image: ImageFile.ImageFile, rendition: Rendition) -> int:
    """Decode the first frame, for JPEG no larger than ``rendition`` needs; return the EXIF orientation
    (read again once loaded: a PNG may carry it after its pixels)."""
    if image.format == "JPEG":
        image.draft(None, geometry.decoded_size_needed(rendition, image.size, orientation.orientation(image)))
    image.load()
    return orientation.orientation(image)


def _small_copy(frame: Image.Image) -> Image.Image:
    """A copy of ``frame`` whose long side is at most ``FOCUS_SIDE``: box-averaged where the mode
    allows, else sampled."""
    factor = math.ceil(max(frame.size) / FOCUS_SIDE)
    if factor <= 1:
        return frame.copy()
    if frame.mode in _REDUCIBLE:
        return frame.reduce(factor)
    size = (max(1, frame.width // factor), max(1, frame.height // factor))
    return frame.resize(size, Image.Resampling.NEAREST)


def _detect_focus(image: Image.Image) -> Focus:
    # Imported when first needed: focus detection is its own adapter module.
    from pymager.adapters.focus import detect_focus

    return detect_focus(image)
