"""Serving a stored file over HTTP: validators, conditional requests (RFC 9110 §13) and single ranges.

CherryPy's ``serve_file`` checks ``If-Modified-Since`` even when ``If-None-Match`` is present, which
RFC 9110 forbids, so pymager evaluates the preconditions itself and streams with CherryPy's helpers.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Iterator
from datetime import datetime

import cherrypy
from cherrypy.lib import file_generator, file_generator_limited, httputil

from pymager.domain import StoredFile
from pymager.web.errors import set_problem

_CHUNK = 64 * 1024


def _http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.replace(microsecond=0), usegmt=True)


def _parse_http_date(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # year 99999999999: OverflowError
        return None


def _etag_list(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak_match(header: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as ``If-None-Match`` requires."""
    tags = _etag_list(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag.removeprefix("W/") for tag in tags)


def not_modified(headers: httputil.HeaderMap, stored: StoredFile) -> bool:
    """Whether a GET/HEAD should be answered 304. ``If-None-Match`` wins over ``If-Modified-Since``."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return _weak_match(if_none_match, stored.etag)
    if_modified_since = headers.get("If-Modified-Since")
    if if_modified_since is not None:
        since = _parse_http_date(if_modified_since)
        if since is not None and since.tzinfo is not None:
            return stored.modified.replace(microsecond=0) <= since
    return False


def _if_range_allows(headers: httputil.HeaderMap, stored: StoredFile) -> bool:
    """``If-Range`` with a strong ETag or an exact date lets the range apply; otherwise send it all."""
    if_range: str | None = headers.get("If-Range")
    if if_range is None:
        return True
    if if_range.startswith('"'):
        return if_range == stored.etag
    return if_range == _http_date(stored.modified)


UNSATISFIABLE = "unsatisfiable"
_RANGE_SPEC = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)


def byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """The single byte range a ``Range`` header asks of ``size`` bytes, as ``(start, stop)`` with
    ``stop`` exclusive and clamped to the file; ``UNSATISFIABLE`` (416); or ``None`` to ignore the
    header and send the whole file, as RFC 9110 §14.2 allows for several ranges and requires for an
    invalid one (another unit, a malformed spec, last < first)."""
    match = _RANGE_SPEC.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:  # suffix: the last N bytes
        if not last:
            return None
        length = int(last)
        return (max(0, size - length), size) if length > 0 and size > 0 else UNSATISFIABLE
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return start, size if not last else min(int(last) + 1, size)


def serve(stored: StoredFile, cache_control: str) -> Iterable[bytes] | bytes:
    """Answer the current GET/HEAD with ``stored``: 200, 206, 304 or 416. Closes the file."""
    request = cherrypy.serving.request
    response = cherrypy.serving.response
    request.hooks.attach("on_end_request", stored.file.close)
    headers = response.headers
    headers["Content-Type"] = stored.content_type
    headers["ETag"] = stored.etag
    headers["Last-Modified"] = _http_date(stored.modified)
    headers["Cache-Control"] = cache_control
    headers["Accept-Ranges"] = "bytes"
    headers["X-Content-Type-Options"] = "nosniff"

    if not_modified(request.headers, stored):
        response.status = 304
        return b""

    range_header = request.headers.get("Range")
    if range_header and _if_range_allows(request.headers, stored):
        requested = byte_range(range_header, stored.size)
        if requested is UNSATISFIABLE:
            body = set_problem(416, "Range not satisfiable", f"the file has {stored.size} bytes")
            headers["Content-Range"] = f"bytes */{stored.size}"
            return body
        if isinstance(requested, tuple):
            start, stop = requested
            response.status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{stored.size}"
            headers["Content-Length"] = str(stop - start)
            stored.file.seek(start)
            return _stream(file_generator_limited(stored.file, stop - start, _CHUNK))

    headers["Content-Length"] = str(stored.size)
    return _stream(file_generator(stored.file, _CHUNK))


def _stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    if cherrypy.serving.request.method == "HEAD":
        return iter(())
    return chunks
