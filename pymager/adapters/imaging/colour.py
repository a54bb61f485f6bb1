"""Colour: the pixels the embedded ICC profile describes, as sRGB.

Converted after the resize, on the small result (a transform costs per pixel), with transforms built
once per profile: building one parses the profile and precomputes tables, which costs more than
converting a thumbnail. Untagged pictures are sRGB already; a profile that cannot be read, or that
describes another colour space than the pixels, is ignored (the pixels are taken as sRGB, or converted
from CMYK as Pillow does).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from dataclasses import dataclass, field

from PIL import Image, ImageCms

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
    """An embedded ICC profile, equal to another by the digest of its bytes."""

    digest: bytes
    data: bytes = field(compare=False, repr=False)


def embedded_profile(image: Image.Image) -> Profile | None:
    """The ICC profile embedded in ``image``, if any."""
    data = image.info.get("icc_profile")
    if not data or not isinstance(data, bytes):
        return None
    return Profile(hashlib.sha256(data).digest(), data)


def converts_cmyk(image: Image.Image, profile: Profile | None) -> bool:
    """Whether ``profile`` will convert ``image``'s CMYK pixels (so they stay CMYK until then)."""
    return image.mode == "CMYK" and profile is not None and _transform(profile, "CMYK") is not None


def to_srgb(image: Image.Image, profile: Profile | None) -> Image.Image:
    """``image`` (a working mode) in sRGB: converted from ``profile`` when it describes the pixels,
    else as it is (CMYK: as Pillow converts it). Grey stays grey."""
    transform = None if profile is None else _transform(profile, image.mode)
    if transform is None:
        return image.convert("RGB") if image.mode == "CMYK" else image
    if image.mode in ("L", "LA"):
        grey = transform.apply(image.getchannel("L")).convert("L")
        if image.mode == "LA":
            grey.putalpha(image.getchannel("A"))
        return grey
    return transform.apply(image)


@functools.lru_cache(maxsize=TRANSFORM_CACHE_SIZE)
def _transform(profile: Profile, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from ``profile`` to sRGB for pixels in ``mode``; ``None`` when the profile cannot
    be read or describes another colour space (remembered too, so a bad profile is parsed once)."""
    colour_space, in_mode, out_mode = _TRANSFORMS.get(mode, ("", "", ""))
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile.data))
        if source.profile.xcolor_space != colour_space:
            log.debug("ignoring a %r profile on %s pixels", source.profile.xcolor_space, mode)
            return None
        return ImageCms.ImageCmsTransform(source, _SRGB, in_mode, out_mode, intent=INTENT, flags=FLAGS)
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        log.info("ignoring an unusable ICC profile", exc_info=True)
        return None
