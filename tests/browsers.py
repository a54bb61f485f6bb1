"""The Accept headers real browsers send for images, and the format each should get from an ``auto``
URL for an opaque still, a still with transparency and an animation (the README's format table)."""

from __future__ import annotations

from typing import NamedTuple

from pymager.domain import ImageFormat, Traits

OPAQUE = Traits(animated=False, alpha=False)
ALPHA = Traits(animated=False, alpha=True)
ANIMATED = Traits(animated=True, alpha=False)

AVIF, WEBP, PNG, JPEG, GIF = (ImageFormat[name] for name in ("AVIF", "WEBP", "PNG", "JPEG", "GIF"))


class Browser(NamedTuple):
    accept: str | None  # None: no Accept header at all
    opaque: ImageFormat
    alpha: ImageFormat
    animated: ImageFormat

    def expected(self, traits: Traits) -> ImageFormat:
        return self.animated if traits.animated else self.alpha if traits.alpha else self.opaque


BROWSERS = {
    "chrome": Browser("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", AVIF, AVIF, WEBP),
    "firefox": Browser(
        "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", AVIF, AVIF, WEBP
    ),
    "safari-17": Browser(
        "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
        "image/svg+xml,image/*;q=0.8,*/*;q=0.5",
        AVIF,
        AVIF,
        WEBP,
    ),
    "safari-15": Browser(
        "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", WEBP, WEBP, WEBP
    ),
    "android-webview-old": Browser("image/webp,image/apng,image/*,*/*;q=0.8", WEBP, WEBP, WEBP),
    "curl": Browser("*/*", JPEG, PNG, GIF),
    "no-header": Browser(None, JPEG, PNG, GIF),
    "refused-by-q0": Browser("image/avif;q=0, image/webp; q=0.000, image/*", JPEG, PNG, GIF),
    "wildcards-only": Browser("image/*;q=1,*/*", JPEG, PNG, GIF),
    "avif-only-mixed-case": Browser("Image/AVIF ; q=0.5", AVIF, AVIF, GIF),
}
