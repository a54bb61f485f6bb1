"""The one table from failures to HTTP statuses, and RFC 9457 ``application/problem+json`` bodies.

Nothing else in pymager decides an error status: every problem pymager sends, the web layer's own
404, 405, 416 and 500 included, is a ``PymagerError`` answered through ``STATUS_BY_ERROR``. The errors
CherryPy raises itself (a request without ``Host``, a failure in its own machinery) are first named as
pymager's errors (``error_page``). The README's error table documents this one.
"""

from __future__ import annotations

import html
import json
import logging
import sys
from typing import Any

import cherrypy

from pymager.errors import (
    BadUpload,
    CorruptImage,
    DecodingLimit,
    ImageAlreadyExists,
    ImageNotFound,
    InternalError,
    InvalidDerivedSpec,
    InvalidFocus,
    InvalidImageId,
    InvalidListing,
    LengthRequired,
    MalformedRequest,
    MethodNotAllowed,
    NoSuchResource,
    PymagerError,
    RangeNotSatisfiable,
    ServiceUnavailable,
    SignatureInvalid,
    SignatureKeyUnknown,
    SignatureMalformed,
    SignatureRequired,
    SizeNotAllowed,
    StorageFailed,
    StorageFull,
    TooManyFrames,
    Unauthorized,
    UnknownFormat,
    UnsupportedImage,
    UploadTooLarge,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_PREFIX = "urn:pymager:problem:"
# Both schemes a client may write with: Bearer, and Basic for clients that only know it (the
# 2011 Java client), each its own header line so that clients reading one scheme a line find it.
CHALLENGES = ('Bearer realm="pymager"', 'Basic realm="pymager"')

STATUS_BY_ERROR: dict[type[PymagerError], int] = {
    MalformedRequest: 400,
    InvalidImageId: 400,
    InvalidFocus: 400,
    InvalidListing: 400,
    BadUpload: 400,
    UnknownFormat: 400,
    UnsupportedImage: 400,
    CorruptImage: 400,
    DecodingLimit: 400,
    Unauthorized: 401,
    SizeNotAllowed: 403,
    SignatureRequired: 403,
    SignatureMalformed: 403,
    SignatureKeyUnknown: 403,
    SignatureInvalid: 403,
    NoSuchResource: 404,
    ImageNotFound: 404,
    InvalidDerivedSpec: 404,
    MethodNotAllowed: 405,
    ImageAlreadyExists: 409,
    LengthRequired: 411,
    UploadTooLarge: 413,
    RangeNotSatisfiable: 416,
    TooManyFrames: 422,
    InternalError: 500,
    ServiceUnavailable: 503,
    StorageFailed: 503,
    StorageFull: 507,
}


def status_for(error: PymagerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def problem_type(error_class: type[PymagerError]) -> str:
    """The problem ``type`` of an error class: ``urn:pymager:problem:`` and its name in kebab case."""
    name = error_class.__name__
    return PROBLEM_PREFIX + "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def problem_headers() -> list[tuple[str, str]]:
    """The headers every problem response carries."""
    return [("Content-Type", PROBLEM_JSON), ("Cache-Control", "no-store")]


def error_problem(error: PymagerError, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, extra headers and body of the problem ``error`` maps to (logged if the server is
    unavailable: that is the operator's concern, not the client's)."""
    headers: list[tuple[str, str]] = []
    extension: dict[str, Any] = {}
    if isinstance(error, ServiceUnavailable | StorageFull):
        log.warning("%s %s: %s", method, path, error.detail)
        headers.append(("Retry-After", str(error.retry_after)))
    elif isinstance(error, Unauthorized):
        headers += [("WWW-Authenticate", challenge) for challenge in CHALLENGES]
    elif isinstance(error, MethodNotAllowed):
        headers.append(("Allow", ", ".join(error.allowed)))
    elif isinstance(error, RangeNotSatisfiable):
        headers += [("Content-Range", f"bytes */{error.size}"), ("X-Content-Type-Options", "nosniff")]
    elif isinstance(error, DecodingLimit):
        extension["limit"] = error.limit
    status = status_for(error)
    body = {"type": problem_type(type(error)), "title": error.title, "status": status, "detail": error.detail}
    return status, headers, json.dumps({**body, **extension}).encode("utf-8")


_STALE_HEADERS = ("ETag", "Last-Modified", "Content-Range", "Accept-Ranges", "Content-Disposition")


def problem_for(error: PymagerError) -> bytes:
    """Shape the current CherryPy response as the problem ``error`` maps to; return its body."""
    request = cherrypy.serving.request
    response = cherrypy.serving.response
    status, headers, body = error_problem(error, request.method, request.path_info)
    response.status = status
    for header in _STALE_HEADERS:
        response.headers.pop(header, None)
    named: set[str] = set()
    repeated: list[tuple[bytes, bytes]] = []  # a second line of a header: added by Request.respond
    for name, value in [*problem_headers(), *headers]:
        if name in named:
            repeated.append((name.encode("latin-1"), value.encode("latin-1")))
        else:
            named.add(name)
            response.headers[name] = value
    response.repeated_headers = repeated
    return body


def handle_exception() -> None:
    """``request.error_response``: a failure outside a handler's own ``PymagerError``s. Anything
    unexpected is logged with its traceback; the client gets a 500 problem and never the traceback."""
    error = sys.exc_info()[1]
    if not isinstance(error, PymagerError):  # a PymagerError here was raised outside a handler
        log.exception("unhandled error on %s %s", cherrypy.request.method, cherrypy.request.path_info)
        error = InternalError()
    body = problem_for(error)
    response = cherrypy.serving.response
    response.body = body
    response.headers["Content-Length"] = str(len(body))


def _cherrypy_error(code: int, detail: str) -> PymagerError:
    """The pymager error for an HTTP error CherryPy raised itself."""
    if code >= 500:
        return InternalError()
    if code == 404:
        return NoSuchResource(cherrypy.serving.request.path_info)
    if code == 413:
        return UploadTooLarge(detail)
    if code == 411:
        return LengthRequired()
    return MalformedRequest(detail)  # 400: a request without Host, a malformed cookie


def error_page(status: str, message: str, traceback: str, version: str) -> bytes:
    """``error_page.default``: the errors CherryPy raises itself, as pymager's problems."""
    code = int(status.split()[0])
    detail = html.unescape(message) if message else status
    return problem_for(_cherrypy_error(code, detail))
