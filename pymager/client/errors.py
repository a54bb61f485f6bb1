"""What the client raises: one class per problem type of the server (RFC 9457 ``problem+json``, the
``type`` URN ``urn:pymager:problem:<name>``), grouped under a class per status where a status has several
types, so that ``except NotFound`` catches ``ImageNotFound`` and ``NoSuchResource`` alike.

A problem type this client does not know (a newer server) maps to the class of its status, else to
``ProblemError`` itself; either way ``status``, ``type``, ``title`` and ``detail`` are there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

PROBLEM_PREFIX = "urn:pymager:problem:"

__all__ = [
    "CLASS_BY_STATUS",
    "CLASS_BY_TYPE",
    "PROBLEM_PREFIX",
    "BadRequest",
    "BadUpload",
    "ClientError",
    "CorruptImage",
    "DecodingLimit",
    "Forbidden",
    "ImageAlreadyExists",
    "ImageNotFound",
    "InternalError",
    "InvalidDerivedSpec",
    "InvalidFocus",
    "InvalidImageId",
    "InvalidListing",
    "LengthRequired",
    "MalformedRequest",
    "MethodNotAllowed",
    "NoSuchResource",
    "NotFound",
    "ProblemError",
    "RangeNotSatisfiable",
    "ServiceUnavailable",
    "SignatureInvalid",
    "SignatureKeyUnknown",
    "SignatureMalformed",
    "SignatureRequired",
    "SizeNotAllowed",
    "StorageFailed",
    "StorageFull",
    "TooManyFrames",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnknownFormat",
    "UnsupportedImage",
    "UploadTooLarge",
    "problem_from",
]


class ClientError(Exception):
    """Anything the pymager client raises."""


class TransportError(ClientError):
    """The server could not be reached, or the connection broke before an answer."""


class ProblemError(ClientError):
    """The server answered with an error status. ``type`` is the problem's URN (empty when the body was
    no problem, e.g. from a proxy in front), ``retry_after`` the seconds of ``Retry-After`` if sent."""

    problem: ClassVar[str] = ""  # the kebab name after PROBLEM_PREFIX; "" for a class of a status

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.body: dict[str, Any] = body or {}
        self.retry_after = retry_after


# The classes of a status with several problem types.
class BadRequest(ProblemError):
    """400: the request or the uploaded file was refused."""


class Forbidden(ProblemError):
    """403: a size outside the server's policy, or a derived miss without a valid signature."""


class NotFound(ProblemError):
    """404: no such image, or no such resource."""


class Unavailable(ProblemError):
    """503: try again later (``retry_after``); the client already retried as configured."""


# One class per problem type; the server's table is pymager/web/errors.py STATUS_BY_ERROR.
class MalformedRequest(BadRequest):
    problem = "malformed-request"


class InvalidImageId(BadRequest):
    problem = "invalid-image-id"


class InvalidFocus(BadRequest):
    problem = "invalid-focus"


class InvalidListing(BadRequest):
    problem = "invalid-listing"


class BadUpload(BadRequest):
    problem = "bad-upload"


class UnknownFormat(BadRequest):
    problem = "unknown-format"


class UnsupportedImage(BadRequest):
    problem = "unsupported-image"


class CorruptImage(BadRequest):
    problem = "corrupt-image"


class DecodingLimit(BadRequest):
    """Over a decoding limit; ``limit`` names the server setting (``max_pixels``…)."""

    problem = "decoding-limit"

    @property
    def limit(self) -> str:
        return str(self.body.get("limit", ""))


class Unauthorized(ProblemError):
    problem = "unauthorized"


class SizeNotAllowed(Forbidden):
    problem = "size-not-allowed"


class SignatureRequired(Forbidden):
    problem = "signature-required"


class SignatureMalformed(Forbidden):
    problem = "signature-malformed"


class SignatureKeyUnknown(Forbidden):
    problem = "signature-key-unknown"


class SignatureInvalid(Forbidden):
    problem = "signature-invalid"


class NoSuchResource(NotFound):
    problem = "no-such-resource"


class ImageNotFound(NotFound):
    problem = "image-not-found"


class InvalidDerivedSpec(NotFound):
    problem = "invalid-derived-spec"


class MethodNotAllowed(ProblemError):
    problem = "method-not-allowed"


class ImageAlreadyExists(ProblemError):
    problem = "image-already-exists"


class LengthRequired(ProblemError):
    problem = "length-required"


class UploadTooLarge(ProblemError):
    problem = "upload-too-large"


class RangeNotSatisfiable(ProblemError):
    problem = "range-not-satisfiable"


class TooManyFrames(ProblemError):
    problem = "too-many-frames"


class InternalError(ProblemError):
    problem = "internal-error"


class ServiceUnavailable(Unavailable):
    problem = "service-unavailable"


class StorageFailed(Unavailable):
    problem = "storage-failed"


class StorageFull(ProblemError):
    problem = "storage-full"


def _leaves(cls: type[ProblemError]) -> list[type[ProblemError]]:
    found = [cls] if cls.problem else []
    for sub in cls.__subclasses__():
        found += _leaves(sub)
    return found


CLASS_BY_TYPE: dict[str, type[ProblemError]] = {PROBLEM_PREFIX + c.problem: c for c in _leaves(ProblemError)}
CLASS_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    503: Unavailable,
}


def _number(text: str | None) -> float | None:
    """``Retry-After`` in seconds: pymager sends whole seconds (an HTTP-date, which a proxy might send,
    is read as such)."""
    if text is None:
        return None
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def problem_from(status: int, content_type: str, content: bytes, retry_after: str | None) -> ProblemError:
    """The exception for an error answer: by its problem ``type``, else by its status."""
    body: dict[str, Any] = {}
    if content_type.split(";")[0].strip().lower() in ("application/problem+json", "application/json"):
        try:
            parsed = json.loads(content)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
    problem_type = str(body.get("type", ""))
    cls = CLASS_BY_TYPE.get(problem_type) or CLASS_BY_STATUS.get(status, ProblemError)
    title = str(body.get("title", "")) or f"HTTP {status}"
    detail = str(body.get("detail", "")) if body else content[:200].decode("utf-8", "replace").strip()
    return cls(status, problem_type, title, detail, body, _number(retry_after))
