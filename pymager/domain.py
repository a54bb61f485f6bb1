"""Value objects of pymager: identifiers, sizes, formats and derived-image specs.

Pure Python: nothing here imports a framework, a database or an imaging library.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from pymager.errors import DecodingLimit, InvalidDerivedSpec, InvalidImageId, UnknownFormat

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The id may itself contain '-', so the size is the *last* "-<W>x<H>" before the extension. Sizes have
# no leading zeros, so each derived image has exactly one URL (and one path on disk).
_DERIVED_PATTERN = re.compile(
    r"(?P<id>[A-Za-z0-9_-]{1,128})-(?P<width>[1-9][0-9]{0,8})x(?P<height>[1-9][0-9]{0,8})"
    r"\.(?P<ext>[A-Za-z0-9]{1,8})"
)


class ImageId(str):
    """An image identifier chosen by the client: ``[A-Za-z0-9_-]{1,128}``.

    Only a validated ``ImageId`` is ever used to build a path.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> ImageId:
        if type(value) is cls:  # already validated
            return value
        if not isinstance(value, str) or _ID_PATTERN.fullmatch(value) is None:
            raise InvalidImageId(value if isinstance(value, str) else repr(value))
        return super().__new__(cls, value)


class ImageFormat(enum.Enum):
    """The formats pymager accepts as originals and produces as derived images."""

    JPEG = "JPEG"
    PNG = "PNG"
    GIF = "GIF"
    WEBP = "WEBP"

    @property
    def mime_type(self) -> str:
        return _MIME_TYPES[self]

    @property
    def extension(self) -> str:
        """The canonical file extension (``jpg`` for JPEG)."""
        return _CANONICAL_EXTENSIONS[self]

    @classmethod
    def from_extension(cls, extension: str) -> ImageFormat:
        """Map a URL extension (``jpg``, ``jpeg``, ``png``, ``gif``, ``webp``) to a format."""
        try:
            return _EXTENSIONS[extension]
        except KeyError:
            raise UnknownFormat(extension) from None


_MIME_TYPES = {
    ImageFormat.JPEG: "image/jpeg",
    ImageFormat.PNG: "image/png",
    ImageFormat.GIF: "image/gif",
    ImageFormat.WEBP: "image/webp",
}
_CANONICAL_EXTENSIONS = {
    ImageFormat.JPEG: "jpg",
    ImageFormat.PNG: "png",
    ImageFormat.GIF: "gif",
    ImageFormat.WEBP: "webp",
}
_EXTENSIONS = {
    "jpg": ImageFormat.JPEG,
    "jpeg": ImageFormat.JPEG,
    "png": ImageFormat.PNG,
    "gif": ImageFormat.GIF,
    "webp": ImageFormat.WEBP,
}


@dataclass(frozen=True, order=True)
class Size:
    """A width × height in pixels, both at least 1."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"size must be at least 1x1, got {self.width}x{self.height}")

    @classmethod
    def parse(cls, text: str) -> Size:
        """Parse ``"<W>x<H>"`` (surrounding whitespace allowed)."""
        match = re.fullmatch(r"\s*([0-9]{1,9})x([0-9]{1,9})\s*", text)
        if match is None:
            raise ValueError(f"expected <width>x<height>, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class SizePolicy:
    """Which derived sizes a server produces: none wider or taller than ``max_dimension`` and, when
    ``allowed`` is not empty, only those (each still within ``max_dimension``)."""

    max_dimension: int
    allowed: frozenset[Size] = frozenset()

    def allows(self, size: Size) -> bool:
        """Whether a derived image of ``size`` may be produced."""
        if size.width > self.max_dimension or size.height > self.max_dimension:
            return False
        return not self.allowed or size in self.allowed


@dataclass(frozen=True)
class DecodeLimits:
    """What an uploaded image may demand of the decoders. Each field is the setting of the same name
    (see the README), with its default; ``Settings`` takes its defaults from here."""

    max_pixels: int = 50_000_000
    max_image_side: int = 20_000
    max_frames: int = 1_000
    max_animation_pixels: int = 250_000_000
    max_jpeg_scans: int = 100
    max_metadata_bytes: int = 4 * 1024 * 1024

    def check_size(self, width: int, height: int) -> None:
        """Refuse a picture (or GIF canvas, or frame) of ``width`` x ``height``."""
        if width * height > self.max_pixels:
            raise DecodingLimit(
                f"the image is {width}x{height} = {width * height} pixels; "
                f"at most {self.max_pixels} pixels are accepted (max_pixels)",
                "max_pixels",
            )
        if max(width, height) > self.max_image_side:
            raise DecodingLimit(
                f"the image is {width}x{height}; at most {self.max_image_side} pixels per side are "
                "accepted (max_image_side)",
                "max_image_side",
            )

    def check_frames(self, frames: int, width: int, height: int) -> None:
        """Refuse an animation of ``frames`` frames on a ``width`` x ``height`` canvas."""
        if frames > self.max_frames:
            raise DecodingLimit(
                f"the animation has {frames} frames; at most {self.max_frames} are accepted (max_frames)",
                "max_frames",
            )
        if frames * width * height > self.max_animation_pixels:
            raise DecodingLimit(
                f"the animation has {frames} frames of {width}x{height} = {frames * width * height} "
                f"pixels; at most {self.max_animation_pixels} are accepted (max_animation_pixels)",
                "max_animation_pixels",
            )


@dataclass(frozen=True)
class DerivedSpec:
    """What a derived URL asks for: ``<id>-<W>x<H>.<ext>``."""

    image_id: ImageId
    size: Size
    format: ImageFormat

    @classmethod
    def parse(cls, segment: str) -> DerivedSpec:
        """Parse a derived URL segment.

        Raises ``InvalidDerivedSpec`` when the segment does not match the grammar (404: there is no such
        resource) and ``UnknownFormat`` when only the extension is unknown (400). The last few thousand
        valid segments are remembered: the same URLs come back on every cache hit.
        """
        return _parse_derived(segment)

    @classmethod
    def _parse(cls, segment: str) -> DerivedSpec:
        match = _DERIVED_PATTERN.fullmatch(segment)
        if match is None:
            raise InvalidDerivedSpec(segment)
        width, height = int(match.group("width")), int(match.group("height"))
        if width < 1 or height < 1:
            raise InvalidDerivedSpec(segment)
        image_format = ImageFormat.from_extension(match.group("ext"))
        return cls(ImageId(match.group("id")), Size(width, height), image_format)

    @property
    def key(self) -> str:
        """The canonical name of this derived image (``<id>-<W>x<H>.<ext>``, canonical extension)."""
        return f"{self.image_id}-{self.size}.{self.format.extension}"


@functools.lru_cache(maxsize=4096)
def _parse_derived(segment: str) -> DerivedSpec:
    return DerivedSpec._parse(segment)


@dataclass(frozen=True)
class ImageInfo:
    """What the image processor learns from a file's header and a full decode."""

    format: ImageFormat
    width: int
    height: int


@dataclass(frozen=True)
class Original:
    """A stored original as the registry records it."""

    image_id: ImageId
    format: ImageFormat
    width: int
    height: int
    bytes: int
    checksum: str
    created: datetime


@dataclass(frozen=True)
class StoredFile:
    """A file opened for serving, and how to describe it over HTTP. Whoever receives it closes
    ``file``; it stays readable even if the path is removed meanwhile."""

    file: BinaryIO
    content_type: str
    size: int
    modified: datetime
    etag: str


class OriginalStatus(enum.Enum):
    """Lifecycle of an original's row. ``DELETING`` rows are invisible to readers and block re-uploads
    until their files are gone, so a crash mid-delete can never let a new upload inherit old files."""

    READY = "ready"
    DELETING = "deleting"


class DerivedStatus(enum.Enum):
    """Lifecycle of a derived image's row: claimed (``PENDING``, with an owner) then ``READY``."""

    PENDING = "pending"
    READY = "ready"


@dataclass(frozen=True)
class OriginalRecord:
    """An original's row in the registry."""

    original: Original
    status: OriginalStatus


@dataclass(frozen=True)
class DerivedRecord:
    """A derived image's row in the registry."""

    spec: DerivedSpec
    status: DerivedStatus
    owner: str
    claimed_at: datetime
    bytes: int | None
    checksum: str | None
