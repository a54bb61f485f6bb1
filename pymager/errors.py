"""The vocabulary of failures. Each class is mapped to an HTTP status once, in ``pymager.web.errors``."""

from __future__ import annotations


class PymagerError(Exception):
    """Base of every failure pymager reports to a client."""

    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidImageId(PymagerError):
    title = "Invalid image id"

    def __init__(self, value: str) -> None:
        super().__init__(f"image ids match [A-Za-z0-9_-]{{1,128}}; got {value[:200]!r}")


class InvalidDerivedSpec(PymagerError):
    """The derived URL segment does not match ``<id>-<W>x<H>.<ext>``: no such resource."""

    title = "Not found"

    def __init__(self, segment: str) -> None:
        super().__init__(f"{segment[:200]!r} does not name a derived image (<id>-<W>x<H>.<ext>)")


class UnknownFormat(PymagerError):
    title = "Unknown format"

    def __init__(self, extension: str) -> None:
        super().__init__(f"unknown image extension {extension[:20]!r}; use jpg, jpeg, png, gif or webp")


class BadUpload(PymagerError):
    """The upload request is malformed (missing ``file`` field, broken multipart)."""

    title = "Bad upload"


class SizeNotAllowed(PymagerError):
    title = "Size not allowed"


class ImageNotFound(PymagerError):
    title = "Image not found"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"no original image with id {image_id!r}")


class ImageAlreadyExists(PymagerError):
    title = "Image already exists"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"an original image with id {image_id!r} already exists")


class Unauthorized(PymagerError):
    """A write without a valid ``Authorization: Bearer <key>`` while ``[auth] api_keys`` is set."""

    title = "Unauthorized"


class UploadTooLarge(PymagerError):
    title = "Upload too large"


class UnsupportedImage(PymagerError):
    """Not an image, or an image in a format pymager does not accept."""

    title = "Unsupported media type"


class CorruptImage(PymagerError):
    """An accepted format whose data is corrupt, truncated or beyond the decoding limits."""

    title = "Corrupt image"


class ServiceUnavailable(PymagerError):
    """A dependency (registry, storage) is unusable right now; the client may retry."""

    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
