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

from pymager.errors import (
    DecodingLimit,
    InvalidDerivedSpec,
    InvalidFocus,
    InvalidImageId,
    PymagerError,
    UnknownFormat,
)

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The id may itself contain '-', so the size (and mode) are the *last* "-<W>x<H>[-<mode>]" before the
# extension. Sides have no leading zeros and fill is never spelled out, so each derived image has exactly
# one URL (and one stored name). A side may be 0 (unbounded) in fit mode only, checked after the match.
_DERIVED_PATTERN = re.compile(
    r"(?P<id>[A-Za-z0-9_-]{1,128})-(?P<width>0|[1-9][0-9]{0,8})x(?P<height>0|[1-9][0-9]{0,8})"
    r"(?:-(?P<mode>fit|pad))?\.(?P<ext>[A-Za-z0-9]{1,8})"
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

    @classmethod
    def is_valid(cls, value: str) -> bool:
        """Whether ``value`` is an id (for names found in storage, where a non-id is no image's)."""
        return _ID_PATTERN.fullmatch(value) is not None


class ImageFormat(enum.Enum):
    """The formats pymager accepts as originals; all but HEIF are also produced as derived images."""

    JPEG = "JPEG"
    PNG = "PNG"
    GIF = "GIF"
    WEBP = "WEBP"
    AVIF = "AVIF"
    HEIF = "HEIF"  # HEIC from phones: accepted as an original, never produced

    @property
    def mime_type(self) -> str:
        return _MIME_TYPES[self]

    @property
    def animates(self) -> bool:
        """Whether a derived image in this format keeps every frame of an animated original."""
        return self in _ANIMATED_OUTPUTS

    @property
    def extension(self) -> str:
        """The canonical file extension (``jpg`` for JPEG)."""
        return _CANONICAL_EXTENSIONS[self]

    @classmethod
    def from_extension(cls, extension: str) -> ImageFormat:
        """Map a derived URL's extension (``jpg``, ``jpeg``, ``png``, ``gif``, ``webp``, ``avif``) to the
        format it produces."""
        try:
            return _EXTENSIONS[extension]
        except KeyError:
            raise UnknownFormat(extension) from None


_MIME_TYPES = {
    ImageFormat.JPEG: "image/jpeg",
    ImageFormat.PNG: "image/png",
    ImageFormat.GIF: "image/gif",
    ImageFormat.WEBP: "image/webp",
    ImageFormat.AVIF: "image/avif",
    ImageFormat.HEIF: "image/heic",
}
_CANONICAL_EXTENSIONS = {
    ImageFormat.JPEG: "jpg",
    ImageFormat.PNG: "png",
    ImageFormat.GIF: "gif",
    ImageFormat.WEBP: "webp",
    ImageFormat.AVIF: "avif",
    ImageFormat.HEIF: "heic",
}
_ANIMATED_OUTPUTS = frozenset({ImageFormat.GIF, ImageFormat.WEBP, ImageFormat.AVIF})
_EXTENSIONS = {
    "jpg": ImageFormat.JPEG,
    "jpeg": ImageFormat.JPEG,
    "png": ImageFormat.PNG,
    "gif": ImageFormat.GIF,
    "webp": ImageFormat.WEBP,
    "avif": ImageFormat.AVIF,
}
# The extension of a derived URL that lets pymager choose the format from the request's Accept header.
AUTO_EXTENSION = "auto"
# The formats of derived images, in the order the README lists them.
DERIVED_FORMATS = tuple(_EXTENSIONS[extension] for extension in ("jpg", "png", "gif", "webp", "avif"))


@dataclass(frozen=True, order=True)
class Size:
    """A width × height in pixels. A side of 0 means unbounded, which only a ``fit`` request may ask;
    ``0x0`` is no size."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0 or not (self.width or self.height):
            raise ValueError(f"a size has no negative side and is not 0x0, got {self.width}x{self.height}")

    @property
    def bounded(self) -> bool:
        """Whether both sides are given (no 0)."""
        return bool(self.width and self.height)

    @classmethod
    def parse(cls, text: str) -> Size:
        """Parse ``"<W>x<H>"`` (surrounding whitespace allowed)."""
        match = re.fullmatch(r"\s*([0-9]{1,9})x([0-9]{1,9})\s*", text)
        if match is None:
            raise ValueError(f"expected <width>x<height>, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


class Mode(enum.Enum):
    """How a derived image is fitted to its W×H (the README's geometry table)."""

    FILL = "fill"  # exactly W×H: scaled to cover, cropped around the focal point (the URL names no mode)
    FIT = "fit"  # all of the picture inside W×H, aspect kept, never enlarged; a side may be 0
    PAD = "pad"  # fit, then centred on exactly W×H (transparent where the format has alpha)

    @property
    def suffix(self) -> str:
        """What the mode adds to a derived name: nothing for fill, ``-fit``, ``-pad``."""
        return "" if self is Mode.FILL else f"-{self.value}"


@dataclass(frozen=True)
class Focus:
    """The focal point of a picture: fractions of its upright width and height (after EXIF orientation)
    from its top-left corner, each in [0, 1]. A fill crop keeps it, as centred as the picture allows."""

    x: float
    y: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0):
            raise ValueError(f"a focal point is two fractions in [0, 1], got {self.x}, {self.y}")

    @classmethod
    def parse(cls, text: str) -> Focus:
        """Parse the upload field ``focus=<x>,<y>`` (two decimal numbers in [0, 1])."""
        match = _FOCUS_PATTERN.fullmatch(text.strip())
        if match is None:
            raise InvalidFocus(text)
        x, y = float(match.group(1)), float(match.group(2))
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise InvalidFocus(text)
        return cls(x, y)

    def __str__(self) -> str:
        return f"{self.x:g},{self.y:g}"


CENTRE = Focus(0.5, 0.5)
_DECIMAL = r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*"
_FOCUS_PATTERN = re.compile(_DECIMAL + "," + _DECIMAL)


@dataclass(frozen=True)
class SizePolicy:
    """Which derived images a server produces: none wider or taller than ``max_dimension`` and, when
    ``allowed`` is not empty, only those sizes in those modes (each still within ``max_dimension``)."""

    max_dimension: int
    allowed: frozenset[tuple[Size, Mode]] = frozenset()

    def allows(self, size: Size, mode: Mode = Mode.FILL) -> bool:
        """Whether a derived image of ``size`` in ``mode`` may be produced."""
        if size.width > self.max_dimension or size.height > self.max_dimension:
            return False
        return not self.allowed or (size, mode) in self.allowed

    def box(self, size: Size) -> Size:
        """The box a result must fit: an unbounded side (0) is ``max_dimension``, so no result is ever
        larger than it."""
        return Size(size.width or self.max_dimension, size.height or self.max_dimension)


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
    """What a derived URL asks for: ``<id>-<W>x<H>[-<mode>].<ext>``."""

    image_id: ImageId
    size: Size
    format: ImageFormat
    mode: Mode = Mode.FILL

    def __post_init__(self) -> None:
        if not self.size.bounded and self.mode is not Mode.FIT:
            raise ValueError(f"only fit takes an unbounded side, got {self.size} {self.mode.value}")

    @classmethod
    def parse(cls, segment: str) -> DerivedSpec:
        """Parse a derived URL segment.

        Raises ``InvalidDerivedSpec`` when the segment does not match the grammar (404: there is no such
        resource) and ``UnknownFormat`` when only the extension is unknown (400). The last few thousand
        valid segments are remembered: the same URLs come back on every cache hit.
        """
        spec = _parse_derived(segment)
        if isinstance(spec, AutoSpec):
            raise UnknownFormat(AUTO_EXTENSION)
        return spec

    @property
    def name(self) -> str:
        """The name of this derived image among its original's: ``<W>x<H>[-<mode>].<ext>`` (canonical
        extension), as stored and as the front server computes it from the URL."""
        return f"{self.size}{self.mode.suffix}.{self.format.extension}"

    @property
    def key(self) -> str:
        """The canonical URL segment of this derived image (``<id>-<W>x<H>[-<mode>].<ext>``)."""
        return f"{self.image_id}-{self.name}"


@dataclass(frozen=True)
class Rendition:
    """What the image processor makes of an original for one derived image: ``size`` is the box (both
    sides at least 1: an unbounded side is already ``max_dimension``), ``focus`` the original's focal
    point (fill keeps it in its crop)."""

    size: Size
    mode: Mode
    format: ImageFormat
    focus: Focus = CENTRE


@dataclass(frozen=True)
class AutoSpec:
    """A derived URL whose extension is ``auto``: ``<id>-<W>x<H>[-<mode>].auto``. Each request gets the
    derived image in the format ``choose_format`` picks for its Accept header; that image is the very
    one its concrete URL names."""

    image_id: ImageId
    size: Size
    mode: Mode = Mode.FILL

    def resolve(self, image_format: ImageFormat) -> DerivedSpec:
        return DerivedSpec(self.image_id, self.size, image_format, self.mode)


def stored_derived(image_id: str, name: str) -> DerivedSpec | None:
    """The derived image a store keeps as ``name`` among ``image_id``'s, or ``None`` when ``name`` is
    not one's canonical name (a temporary file, traits, a stray)."""
    try:
        spec = DerivedSpec.parse(f"{image_id}-{name}")
    except PymagerError:
        return None
    return spec if spec.image_id == image_id and name == spec.name else None


def parse_derived(segment: str) -> DerivedSpec | AutoSpec:
    """Parse a derived URL segment, concrete or ``auto`` (the errors of ``DerivedSpec.parse``). The last
    few thousand valid segments are remembered: the same URLs come back on every cache hit."""
    return _parse_derived(segment)


@functools.lru_cache(maxsize=4096)
def _parse_derived(segment: str) -> DerivedSpec | AutoSpec:
    match = _DERIVED_PATTERN.fullmatch(segment)
    if match is None:
        raise InvalidDerivedSpec(segment)
    width, height = int(match.group("width")), int(match.group("height"))
    mode = Mode(match.group("mode") or "fill")
    if not (width and height) and (mode is not Mode.FIT or not (width or height)):
        raise InvalidDerivedSpec(segment)  # a 0 side outside fit, or 0x0
    image_id, size = ImageId(match.group("id")), Size(width, height)
    if match.group("ext") == AUTO_EXTENSION:
        return AutoSpec(image_id, size, mode)
    return DerivedSpec(image_id, size, ImageFormat.from_extension(match.group("ext")), mode)


@dataclass(frozen=True)
class Traits:
    """What choosing a format for an ``auto`` URL needs to know of an original."""

    animated: bool
    alpha: bool

    @property
    def kind(self) -> str:
        """One word for the choice: ``animated``, ``alpha`` (a still with transparency) or ``opaque``.
        The front servers read it from the disk (see the README's format table)."""
        return "animated" if self.animated else "alpha" if self.alpha else "opaque"

    @classmethod
    def of_kind(cls, kind: str) -> Traits:
        """The traits a ``kind`` stands for (an animation's alpha is not part of its kind)."""
        return _TRAITS_OF_KIND[kind]


STILL_OPAQUE = Traits(animated=False, alpha=False)
_TRAITS_OF_KIND = {
    "animated": Traits(animated=True, alpha=False),
    "alpha": Traits(animated=False, alpha=True),
    "opaque": STILL_OPAQUE,
}
TRAIT_KINDS = tuple(_TRAITS_OF_KIND)


def choose_format(accepted: frozenset[str], traits: Traits) -> ImageFormat:
    """The format of an ``auto`` URL for a request whose Accept header names ``accepted`` explicitly
    with q > 0 (lower-case media types; ``image/*`` and ``*/*`` never earn AVIF or WebP): an animation
    as WebP if named, else GIF; a still as AVIF if named, else WebP if named, else PNG when it has
    transparency, else JPEG."""
    if traits.animated:
        return ImageFormat.WEBP if "image/webp" in accepted else ImageFormat.GIF
    if "image/avif" in accepted:
        return ImageFormat.AVIF
    if "image/webp" in accepted:
        return ImageFormat.WEBP
    return ImageFormat.PNG if traits.alpha else ImageFormat.JPEG


@dataclass(frozen=True)
class ImageInfo:
    """What the image processor learns from a file's header and a full decode: the format, the size as
    stored, the focal point it detected (``None`` when detection is off) and its traits."""

    format: ImageFormat
    width: int
    height: int
    focus: Focus | None = None
    traits: Traits = STILL_OPAQUE
    upright: Size | None = None  # the size once EXIF orientation is applied (None: as stored)
    placeholder: Placeholder | None = None
    reduced: tuple[int, ...] = ()  # the long sides of the reduced copies identify wrote, largest first


@dataclass(frozen=True)
class Placeholder:
    """What a page shows before a picture loads: a ThumbHash (base64) and the dominant colour."""

    thumbhash: str
    colour: str  # "#rrggbb"


@dataclass(frozen=True)
class Upload:
    """An upload as the web layer hands it over: the file, and the ``focus`` form field as sent."""

    file: BinaryIO
    focus: str | None = None


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
    focus: Focus = CENTRE
    # None: stored before pymager recorded them (filled when first needed, or by a backfill)
    traits: Traits | None = None
    upright: Size | None = None
    placeholder: Placeholder | None = None
    # The long sides of its reduced copies, largest first (README, "Reduced copies"); None: stored
    # before pymager made them (not yet backfilled), () when it needs none.
    reduced: tuple[int, ...] | None = None
    # How many times its derived images were purged (``purge-derived``): part of their object names in a
    # bucket, so that no host's cache serves a purged image again.
    derived_epoch: int = 0

    @property
    def described(self) -> bool:
        """Whether the registry knows every fact identify finds (traits, upright size, placeholder)."""
        return None not in (self.traits, self.upright, self.placeholder)


@dataclass(frozen=True)
class StoredFile:
    """A file opened for serving, and how to describe it over HTTP. Whoever receives it closes
    ``file``; it stays readable even if the path is removed meanwhile."""

    file: BinaryIO
    content_type: str
    size: int
    modified: datetime
    etag: str
    negotiated: DerivedSpec | None = None  # for an ``auto`` URL: the concrete derived image served
    original_id: ImageId | None = None  # whose picture it is: its CDN cache tag


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
    # The picture's size as made (None: not ready, or made before pymager kept it), and when.
    produced: Size | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class OriginalDescription:
    """An original as ``/original/<id>/info`` describes it: its row and its ready derived images."""

    original: Original
    derived: tuple[DerivedRecord, ...]


@dataclass(frozen=True)
class OriginalsPage:
    """One page of the listing, by id ascending; ``after`` is where the next page starts (``None``
    on the last page)."""

    originals: tuple[Original, ...]
    after: ImageId | None


@dataclass(frozen=True)
class PurgeNotice:
    """A notice to the CDN that an original's responses are stale (README, "CDN purge"), waiting in the
    registry's outbox: ``body`` is the JSON posted; ``attempts`` counts the deliveries tried."""

    number: int
    image_id: ImageId
    body: str
    attempts: int
