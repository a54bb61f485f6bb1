"""The one table from failures to HTTP statuses, and RFC 9457 ``application/problem+json`` bodies.

Nothing else in pymager decides an error status; the README's error table documents this one.
"""

from __future__ import annotations

import html
import json
import logging
import sys
from http import HTTPStatus

import cherrypy

from pymager.errors import (
    BadUpload,
    CorruptImage,
    ImageAlreadyExists,
    ImageNotFound,
    InvalidDerivedSpec,
    InvalidImageId,
    PymagerError,
    ServiceUnavailable,
    SizeNotAllowed,
    Unauthorized,
    UnknownFormat,
    UnsupportedImage,
    UploadTooLarge,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: dict[type[PymagerError], int] = {
    InvalidImageId: 400,
    BadUpload: 400,
    UnknownFormat: 400,
    Unauthorized: 401,
    SizeNotAllowed: 403,
    ImageNotFound: 404,
    InvalidDerivedSpec: 404,
    ImageAlreadyExists: 409,
    UploadTooLarge: 413,
    UnsupportedImage: 415,
    CorruptImage: 422,
    ServiceUnavailable: 503,
}


def status_for(error: PymagerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def _slug(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def problem_json(status: int, title: str, detail: str, problem_type: str = "about:blank") -> bytes:
    """The RFC 9457 body of a problem."""
    body = {"type": problem_type, "title": title, "status": status, "detail": detail}
    return json.dumps(body).encode("utf-8")


def problem_headers() -> list[tuple[str, str]]:
    """The headers every problem response carries."""
    return [("Content-Type", PROBLEM_JSON), ("Cache-Control", "no-store")]


def error_problem(error: PymagerError, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, extra headers and body of the problem ``error`` maps to (logged if the server is
    unavailable: that is the operator's concern, not the client's)."""
    headers: list[tuple[str, str]] = []
    if isinstance(error, ServiceUnavailable):
        log.warning("%s %s: %s", method, path, error.detail)
        headers.append(("Retry-After", str(error.retry_after)))
    status = status_for(error)
    problem_type = f"urn:pymager:problem:{_slug(type(error).__name__)}"
    return status, headers, problem_json(status, error.title, error.detail, problem_type)


_STALE_HEADERS = ("ETag", "Last-Modified", "Content-Range", "Accept-Ranges", "Content-Disposition")


def _shape_response(status: int, headers: list[tuple[str, str]]) -> None:
    """Set the current CherryPy response's status and headers for a problem."""
    response = cherrypy.serving.response
    response.status = status
    for name, value in headers:
        response.headers[name] = value
    for header in _STALE_HEADERS:
        response.headers.pop(header, None)


def set_problem(status: int, title: str, detail: str, problem_type: str = "about:blank") -> bytes:
    """Shape the current CherryPy response as a problem; return its JSON body."""
    _shape_response(status, problem_headers())
    return problem_json(status, title, detail, problem_type)


def problem_for(error: PymagerError) -> bytes:
    """Shape the current CherryPy response as the problem ``error`` maps to; return its body."""
    request = cherrypy.serving.request
    status, headers, body = error_problem(error, request.method, request.path_info)
    _shape_response(status, [*problem_headers(), *headers])
    return body


def _translate_errors() -> None:
    """``before_handler`` hook: answer a ``PymagerError`` from the handler with its problem.

    Expected failures are answers, not crashes: they never reach CherryPy's error path (which logs a
    traceback for every exception).
    """
    request = cherrypy.serving.request
    handler = request.handler
    if handler is None:
        return

    def translating_handler(*args: object, **kwargs: object) -> object:
        try:
            return handler(*args, **kwargs)
        except PymagerError as error:
            return problem_for(error)

    request.handler = translating_handler


problems = cherrypy.Tool("before_handler", _translate_errors, name="problems", priority=90)


def handle_exception() -> None:
    """``request.error_response``: a failure nobody expected. Logged with its traceback; the client
    gets a 500 problem and never the traceback."""
    error = sys.exc_info()[1]
    if isinstance(error, PymagerError):  # raised outside a handler (e.g. by another hook)
        body = problem_for(error)
    else:
        log.exception("unhandled error on %s %s", cherrypy.request.method, cherrypy.request.path_info)
        body = set_problem(500, "Internal server error", "the server failed to handle this request")
    response = cherrypy.serving.response
    response.body = body
    response.headers["Content-Length"] = str(len(body))


def error_page(status: str, message: str, traceback: str, version: str) -> bytes:
    """``error_page.default``: errors CherryPy raises itself (no route, 405, 413, malformed body)."""
    code = int(status.split()[0])
    detail = html.unescape(message) if message else HTTPStatus(code).description
    if code >= 500:
        detail = "the server failed to handle this request"
    return set_problem(code, HTTPStatus(code).phrase, detail)
