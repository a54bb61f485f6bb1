"""Serving a stored file over HTTP: validators, conditional requests (RFC 9110 §13) and single ranges.

``answer`` decides the status, headers and byte span of a response from the request's headers alone
(a pure function, tested as one); ``serve`` applies it to the current CherryPy response. CherryPy's
``serve_file`` checks ``If-Modified-Since`` even when ``If-None-Match`` is present, which RFC 9110
forbids, so pymager evaluates the preconditions itself.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from wsgiref.handlers import format_date_time

import cherrypy
from cherrypy.lib import file_generator_limited

from pymager.domain import StoredFile
from pymager.errors import RangeNotSatisfiable

CHUNK = 64 * 1024

Header = Callable[[str], "str | None"]
"""A request header by name (``None`` when absent)."""


# A q of zero as RFC 9110 §12.4.2 spells it (at most three decimals); any other q is above zero or
# invalid, and either way leaves its type named. The Apache site's Accept conditions say the same.
_ZERO_QUALITY = re.compile(r"0(?:\.0{0,3})?")


def named_types(accept: str | None) -> frozenset[str]:
    """The media types an Accept header names explicitly with q > 0, in lower case: ranges with a
    wildcard (``image/*``, ``*/*``) never count, and a type refused anywhere (``q=0``) is not named."""
    if not accept:
        return frozenset()
    named: set[str] = set()
    refused: set[str] = set()
    for element in accept.split(","):
        media, *parameters = element.split(";")
        media = media.strip().lower()
        if "/" not in media or "*" in media:
            continue
        zero = any(
            name.strip().lower() == "q" and _ZERO_QUALITY.fullmatch(value.strip()) is not None
            for name, _, value in (parameter.partition("=") for parameter in parameters)
        )
        (refused if zero else named).add(media)
    return frozenset(named - refused)


def _http_date(moment: datetime) -> str:
    return format_date_time(moment.timestamp())  # IMF-fixdate; a third of email.utils' cost


_ASCTIME = re.compile(r"[A-Za-z]{3} [A-Za-z]{3} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}")


def _parse_http_date(value: str) -> datetime | None:
    """An HTTP-date in any of RFC 9110's three formats (§5.6.7), aware; ``None`` if it is none."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # year 99999999999: OverflowError
        return None
    if moment.tzinfo is None:  # no zone: asctime is in UTC; anything else ("-0000") is no HTTP-date
        return moment.replace(tzinfo=UTC) if _ASCTIME.fullmatch(value.strip()) else None
    return moment


def _etag_list(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak_match(header: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as ``If-None-Match`` requires."""
    tags = _etag_list(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag.removeprefix("W/") for tag in tags)


def not_modified(header: Header, stored: StoredFile) -> bool:
    """Whether a GET/HEAD should be answered 304. ``If-None-Match`` wins over ``If-Modified-Since``."""
    if_none_match = header("If-None-Match")
    if if_none_match is not None:
        return _weak_match(if_none_match, stored.etag)
    if_modified_since = header("If-Modified-Since")
    if if_modified_since is not None:
        since = _parse_http_date(if_modified_since)
        if since is not None:
            return stored.modified.replace(microsecond=0) <= since
    return False


def _if_range_allows(header: Header, stored: StoredFile) -> bool:
    """``If-Range`` with a strong ETag or an exact date lets the range apply; otherwise send it all."""
    if_range = header("If-Range")
    if if_range is None:
        return True
    if if_range.startswith('"'):
        return if_range == stored.etag
    return if_range == _http_date(stored.modified)


UNSATISFIABLE = "unsatisfiable"
_RANGE_SPEC = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)
# Beyond any file; also where int() of a long digit string would refuse (over 4300 digits).
_HUGE = 10**18


def _position(digits: str) -> int:
    return int(digits) if len(digits) < 19 else _HUGE


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
        length = _position(last)
        return (max(0, size - length), size) if length > 0 and size > 0 else UNSATISFIABLE
    start = _position(first)
    if last and _position(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return start, size if not last else min(_position(last) + 1, size)


@dataclass(frozen=True)
class Answer:
    """How to answer a GET/HEAD of a stored file: the status and headers, then ``length`` bytes of the
    file from ``start``."""

    status: int
    headers: list[tuple[str, str]]
    start: int = 0
    length: int = 0


def answer(stored: StoredFile, header: Header, cache_control: str) -> Answer:
    """200, 206 or 304 for a GET/HEAD of ``stored``, from the request's headers; raises
    ``RangeNotSatisfiable`` (416) for a range beyond the file."""
    validators = [("ETag", stored.etag), ("Last-Modified", _http_date(stored.modified))]
    common = [
        ("Content-Type", stored.content_type),
        *validators,
        ("Cache-Control", cache_control),
        ("Accept-Ranges", "bytes"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if stored.original_id is not None:  # what a CDN purges it by (README, "CDN purge")
        common += [("Surrogate-Key", stored.original_id), ("Cache-Tag", stored.original_id)]
    if stored.negotiated is not None:  # an ``auto`` URL: this answer depends on Accept
        common += [("Vary", "Accept"), ("Content-Location", f"/derived/{stored.negotiated.key}")]
    if not_modified(header, stored):
        return Answer(304, common)
    range_header = header("Range")
    if range_header and _if_range_allows(header, stored):
        requested = byte_range(range_header, stored.size)
        if requested is UNSATISFIABLE:
            raise RangeNotSatisfiable(stored.size)
        if isinstance(requested, tuple):
            start, stop = requested
            ranged = [
                ("Content-Range", f"bytes {start}-{stop - 1}/{stored.size}"),
                ("Content-Length", str(stop - start)),
            ]
            return Answer(206, [*common, *ranged], start, stop - start)
    return Answer(200, [*common, ("Content-Length", str(stored.size))], 0, stored.size)


def serve(stored: StoredFile, cache_control: str) -> Iterable[bytes] | bytes:
    """Answer the current CherryPy GET/HEAD with ``stored``: 200, 206 or 304 (416 raised). Closes the
    file: at once when its span fits one read (most derived images: one read, one write), else when
    the request ends."""
    request = cherrypy.serving.request
    response = cherrypy.serving.response
    file = stored.file
    try:
        reply = answer(stored, request.headers.get, cache_control)
        response.status = reply.status
        for name, value in reply.headers:
            response.headers[name] = value
        if request.method == "HEAD" or reply.length == 0:
            file.close()
            return b""
        file.seek(reply.start)
        if reply.length <= CHUNK:
            data: bytes = file.read(reply.length)
            file.close()
            return data
    except BaseException:
        file.close()
        raise
    request.hooks.attach("on_end_request", file.close)
    chunks: Iterator[bytes] = file_generator_limited(file, reply.length, CHUNK)
    return chunks
