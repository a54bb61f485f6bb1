"""The vocabulary of failures. Each class is mapped to an HTTP status once, in ``pymager.web.errors``."""

from __future__ import annotations

import errno


class PymagerError(Exception):
    """Base of every failure pymager reports to a client."""

    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# -- requests that name nothing, or ask what a resource cannot do ----------------------------------


class NoSuchResource(PymagerError):
    """No route answers the path (also a route's path with a segment too many or too few)."""

    title = "Not found"

    def __init__(self, path: str) -> None:
        super().__init__(f"nothing is served at {path[:200]!r}")


class MethodNotAllowed(PymagerError):
    """The resource exists but does not answer this method."""

    title = "Method not allowed"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{method[:20]} is not allowed here; use {', '.join(allowed)}")
        self.allowed = allowed


class MalformedRequest(PymagerError):
    """The HTTP request itself is malformed (no ``Host`` on HTTP/1.1, a broken header)."""

    title = "Bad request"


class InternalError(PymagerError):
    """A failure nobody expected; logged with its traceback, which the client never sees."""

    title = "Internal server error"

    def __init__(self) -> None:
        super().__init__("the server failed to handle this request")


# -- ids and derived URLs ---------------------------------------------------------------------------


class InvalidImageId(PymagerError):
    title = "Invalid image id"

    def __init__(self, value: str) -> None:
        super().__init__(f"image ids match [A-Za-z0-9_-]{{1,128}}; got {value[:200]!r}")


class InvalidDerivedSpec(PymagerError):
    """The derived URL segment does not match ``<id>-<W>x<H>[-<mode>].<ext>``: no such resource."""

    title = "Not found"

    def __init__(self, segment: str) -> None:
        super().__init__(f"{segment[:200]!r} does not name a derived image (<id>-<W>x<H>[-fit|-pad].<ext>)")


class UnknownFormat(PymagerError):
    title = "Unknown format"

    def __init__(self, extension: str) -> None:
        super().__init__(
            f"unknown image extension {extension[:20]!r}; use jpg, jpeg, png, gif, webp, avif or auto"
        )


class InvalidListing(PymagerError):
    """A listing's query string that is not ``after=<cursor>&limit=<1..1000>``."""

    title = "Invalid listing request"


class SizeNotAllowed(PymagerError):
    title = "Size not allowed"


class InvalidFocus(PymagerError):
    """The upload's ``focus`` field is not two decimal numbers in [0, 1]."""

    title = "Invalid focus"

    def __init__(self, value: str) -> None:
        super().__init__(f"focus is <x>,<y>, two decimal numbers in [0, 1]; got {value[:100]!r}")


class RangeNotSatisfiable(PymagerError):
    """A ``Range`` that starts beyond the file's end (or asks for its last 0 bytes)."""

    title = "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"the file has {size} bytes")
        self.size = size


# -- uploads ----------------------------------------------------------------------------------------


class BadUpload(PymagerError):
    """The upload request is malformed (missing ``file`` field, broken multipart)."""

    title = "Bad upload"


class UnsupportedImage(PymagerError):
    """Not an image, or an image in a format pymager does not accept."""

    title = "Unsupported image"


class CorruptImage(PymagerError):
    """An accepted format whose data is corrupt or truncated."""

    title = "Corrupt image"


class DecodingLimit(PymagerError):
    """An image that would demand more of the decoders than a decoding limit allows; ``limit`` names
    the setting (``max_pixels``, ``max_frames`` …)."""

    title = "Decoding limit exceeded"

    def __init__(self, detail: str, limit: str) -> None:
        super().__init__(detail)
        self.limit = limit


class TooManyFrames(PymagerError):
    """An animated derived image of an original with more frames than ``max_derived_frames``. Refused
    rather than cut short: a derived image is kept once made, and a truncated animation would outlive
    a raised limit. The still formats (the first frame) are still served."""

    title = "Too many frames to animate"

    def __init__(self, frames: int, limit: int, format_name: str) -> None:
        super().__init__(
            f"the original has {frames} frames; at most {limit} are derived as an animated "
            f"{format_name} (max_derived_frames); "
            "a .jpg or .png of its first frame is served"
        )
        self.frames = frames
        self.limit = limit


class UploadTooLarge(PymagerError):
    title = "Upload too large"


class LengthRequired(PymagerError):
    """An upload sent with neither ``Content-Length`` nor ``Transfer-Encoding: chunked``."""

    title = "Length required"

    def __init__(self) -> None:
        super().__init__("send the upload with a Content-Length or chunked")


class ImageNotFound(PymagerError):
    title = "Image not found"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"no original image with id {image_id!r}")


class ImageAlreadyExists(PymagerError):
    title = "Image already exists"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"an original image with id {image_id!r} already exists")


class Unauthorized(PymagerError):
    """A write without a valid API key (``Bearer``, or ``Basic`` with the key as password) while
    ``[auth] api_keys`` is set."""

    title = "Unauthorized"


# -- signed derived URLs (``[auth] url_keys``): only a miss needs a signature -----------------------


class SignatureRequired(PymagerError):
    """A derived image that is not stored yet, requested without ``?s=`` while url keys are set."""

    title = "Signature required"


class SignatureMalformed(PymagerError):
    """An ``s`` parameter that is not one ``<key-id>.<mac>`` with the mac in unpadded base64url."""

    title = "Signature malformed"


class SignatureKeyUnknown(PymagerError):
    """A signature naming a key id the server does not have (never configured, or retired)."""

    title = "Signature key unknown"


class SignatureInvalid(PymagerError):
    """A well-formed signature that is not the mac of this path under the key it names."""

    title = "Signature invalid"


# -- the server's own state -------------------------------------------------------------------------


class ServiceUnavailable(PymagerError):
    """A dependency (registry, storage) is unusable right now; the client may retry."""

    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


# Space and failing disks come back by an operator's hand, not within seconds: clients that retry
# every few seconds would only add load.
STORAGE_FULL_RETRY_AFTER = 60
STORAGE_FAILED_RETRY_AFTER = 30
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class StorageFull(PymagerError):
    """No room to store what a request needs: the disk or a quota is full, or storing it would leave
    less than ``min_free_bytes`` free. Nothing was stored; the client may retry once space is freed."""

    title = "Insufficient storage"

    def __init__(self, detail: str, retry_after: int = STORAGE_FULL_RETRY_AFTER) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StorageFailed(ServiceUnavailable):
    """The data directory failed (an I/O error, a read-only filesystem, …): nothing was stored."""

    title = "Storage failed"

    def __init__(self, detail: str, retry_after: int = STORAGE_FAILED_RETRY_AFTER) -> None:
        super().__init__(detail, retry_after)


def storage_failure(error: OSError, doing: str) -> StorageFull | StorageFailed:
    """The failure an ``OSError`` of the storage is, while ``doing`` (``"storing the original"``): no
    space or over a quota is ``StorageFull``, anything else ``StorageFailed``. The one place that reads
    an errno; the detail names no path (clients read it)."""
    reason = error.strerror or type(error).__name__
    if error.errno in _NO_SPACE:
        return StorageFull(f"no room while {doing}: {reason}; retry once space is freed")
    return StorageFailed(f"the storage failed while {doing}: {reason}")


# -- failures no client sees -------------------------------------------------------------------------


class PurgeFailed(Exception):
    """The CDN's purge webhook did not accept a notice (no answer, or not a 2xx); it is retried."""
