"""Colour: the pixels the embedded ICC profile describes, as sRGB.

Converted after the resize, on the small result (a transform costs per pixel), with transforms built
once per profile: building one parses the profile and precomputes tables, which costs more than
converting a thumbnail. Untagged pictures are sRGB already; a profile that cannot be read, or that
describes another colour space than the pixels, is ignored (the pixels are taken as sRGB, or converted
from CMYK as Pillow does).
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import cast

from PIL import Image, ImageChops, ImageCms

log = logging.getLogger(__name__)

# Relative colorimetric: every colour sRGB can show keeps its measured value (the others clip). Black
# point compensation is off: stretching a print profile's ink black to sRGB black would move every dark
# and mid tone away from its measured value.
INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
# NOCACHE: a transform is shared by every request thread, and littlecms' one-pixel cache is not
# thread-safe.
FLAGS = ImageCms.Flags.NOCACHE
# Distinct profiles seen by one process; the rare original with a profile beyond these rebuilds.
TRANSFORM_CACHE_SIZE = 64

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Working mode → (the profile's colour space, the transform's input and output modes).
_TRANSFORMS = {
    "RGB": ("RGB ", "RGB", "RGB"),
    "RGBA": ("RGB ", "RGBA", "RGBA"),
    "CMYK": ("CMYK", "CMYK", "RGB"),
    "L": ("GRAY", "L", "RGB"),
    "LA": ("GRAY", "L", "RGB"),
}


@dataclass(frozen=True)
class Profile:
    """An embedded ICC profile and the digest that names it."""

    digest: bytes
    data: bytes = field(repr=False)


def embedded_profile(image: Image.Image) -> Profile | None:
    """The ICC profile embedded in ``image``, if any."""
    data = image.info.get("icc_profile")
    if not data or not isinstance(data, bytes):
        return None
    return Profile(hashlib.sha256(data).digest(), data)


def converts_cmyk(image: Image.Image, profile: Profile | None) -> bool:
    """Whether ``profile`` will convert ``image``'s CMYK pixels (so they stay CMYK until then)."""
    return image.mode == "CMYK" and profile is not None and TRANSFORMS.get(profile, "CMYK") is not None


def to_srgb(image: Image.Image, profile: Profile | None) -> Image.Image:
    """``image`` (a working mode) in sRGB: converted from ``profile`` when it describes the pixels,
    else as it is (CMYK: as Pillow converts it). Grey stays grey."""
    transform = None if profile is None else TRANSFORMS.get(profile, image.mode)
    if transform is None:
        return image.convert("RGB") if image.mode == "CMYK" else image
    if image.mode in ("L", "LA"):
        grey = transform.apply(image.getchannel("L")).convert("L")
        if image.mode == "LA":
            grey.putalpha(image.getchannel("A"))
        return grey
    return transform.apply(image)


class TransformCache:
    """The transforms built so far, least recently used first out, keyed by (profile digest, mode) so
    that no profile's bytes are kept. A profile that cannot be used is remembered too (``None``), so a
    bad profile is parsed once. Thread-safe; two threads missing at once may both build (harmless)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.builds = 0
        self._transforms: OrderedDict[tuple[bytes, str], ImageCms.ImageCmsTransform | None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._transforms)

    def get(self, profile: Profile, mode: str) -> ImageCms.ImageCmsTransform | None:
        """The transform from ``profile`` to sRGB for pixels in ``mode``; ``None`` when the profile
        cannot be read or describes another colour space."""
        key = (profile.digest, mode)
        with self._lock:
            if key in self._transforms:
                self._transforms.move_to_end(key)
                return self._transforms[key]
        transform = _build(profile.data, mode)  # outside the lock: building takes milliseconds
        with self._lock:
            self.builds += 1
            self._transforms[key] = transform
            while len(self._transforms) > self.size:
                self._transforms.popitem(last=False)
        return transform


def _build(data: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    colour_space, in_mode, out_mode = _TRANSFORMS.get(mode, ("", "", ""))
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(data))
        if source.profile.xcolor_space != colour_space:
            log.debug("ignoring a %r profile on %s pixels", source.profile.xcolor_space, mode)
            return None
        transform = ImageCms.ImageCmsTransform(source, _SRGB, in_mode, out_mode, intent=INTENT, flags=FLAGS)
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        log.info("ignoring an unusable ICC profile", exc_info=True)
        return None
    if colour_space == "RGB " and _is_srgb(transform, in_mode):
        return None  # most tagged photos: their pixels are sRGB already, and stay exactly as they are
    return transform


def _is_srgb(transform: ImageCms.ImageCmsTransform, mode: str) -> bool:
    """Whether ``transform`` leaves every colour of a grid through RGB within one level of itself (as
    it does from any of the sRGB profiles cameras and editors embed)."""
    probe = _PROBE if mode == "RGB" else _PROBE.convert(mode)
    extrema = ImageChops.difference(transform.apply(probe).convert("RGB"), _PROBE).getextrema()
    return all(high <= 1 for _, high in cast(tuple[tuple[int, int], ...], extrema))


def _probe() -> Image.Image:
    levels = [*range(0, 256, 8), 255]
    image = Image.new("RGB", (len(levels), len(levels) ** 2))
    image.putdata([(red, green, blue) for blue in levels for green in levels for red in levels])
    return image


_PROBE = _probe()


TRANSFORMS = TransformCache(TRANSFORM_CACHE_SIZE)
