"""Serving a stored file from the request's headers alone (``pymager.web.http``): single byte ranges
(RFC 9110 §14), conditional requests (§13) and the status and headers ``answer`` puts together. The
functional Range table in ``tests/functional/test_api.py`` checks the same contract over HTTP."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from pymager.domain import StoredFile
from pymager.errors import RangeNotSatisfiable
from pymager.web.errors import error_problem
from pymager.web.http import UNSATISFIABLE, Answer, Header, answer, byte_range, not_modified

SIZE = 100
ETAG = '"v1-abc123"'
# The file's mtime has a sub-second part; HTTP dates have whole seconds.
MODIFIED = datetime(2024, 5, 6, 7, 8, 9, 750_000, tzinfo=UTC)
LAST_MODIFIED = "Mon, 06 May 2024 07:08:09 GMT"
SECOND_EARLIER = "Mon, 06 May 2024 07:08:08 GMT"
SECOND_LATER = "Mon, 06 May 2024 07:08:10 GMT"
CACHE_CONTROL = "public, max-age=60"
HUGE = "9" * 5000  # longer than int() takes from a string (4300 digits)


def stored_file(size: int = SIZE) -> StoredFile:
    return StoredFile(
        file=io.BytesIO(bytes(size)),
        content_type="image/png",
        size=size,
        modified=MODIFIED,
        etag=ETAG,
    )


def request(**headers: str) -> Header:
    """The request's headers, given with ``_`` for ``-`` (``If_None_Match``)."""
    return {name.replace("_", "-"): value for name, value in headers.items()}.get


def headers_of(reply: Answer) -> dict[str, str]:
    """The reply's headers by name, after checking that no name is sent twice."""
    names = [name for name, _ in reply.headers]
    assert len(names) == len(set(names)), names
    return dict(reply.headers)


# -- byte_range ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        pytest.param("bytes=0-9", SIZE, (0, 10), id="first-bytes"),
        pytest.param("bytes=10-19", SIZE, (10, 20), id="middle"),
        pytest.param("bytes=5-5", SIZE, (5, 6), id="one-byte"),
        pytest.param("bytes=0-99", SIZE, (0, SIZE), id="exactly-the-file"),
        pytest.param("bytes=5-", SIZE, (5, SIZE), id="open-ended"),
        pytest.param("bytes=99-", SIZE, (99, SIZE), id="open-ended-last-byte"),
        pytest.param("bytes=90-200", SIZE, (90, SIZE), id="end-clamped"),
        pytest.param("bytes=0-99999999999999999999999", SIZE, (0, SIZE), id="long-end-clamped"),
        pytest.param("bytes=-5", SIZE, (95, SIZE), id="suffix"),
        pytest.param("bytes=-100", SIZE, (0, SIZE), id="suffix-of-the-whole-file"),
        pytest.param("bytes=-500", SIZE, (0, SIZE), id="suffix-longer-than-the-file"),
        pytest.param("BYTES=0-9", SIZE, (0, 10), id="unit-case-insensitive"),
        pytest.param(" bytes=0-9 ", SIZE, (0, 10), id="surrounding-whitespace"),
        pytest.param("bytes=0-" + HUGE, SIZE, (0, SIZE), id="huge-end"),
        pytest.param("bytes=-" + HUGE, SIZE, (0, SIZE), id="huge-suffix"),
    ],
)
def test_byte_range_gives_start_and_exclusive_stop(header: str, size: int, expected: tuple[int, int]) -> None:
    assert byte_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [
        pytest.param("bytes=-0", SIZE, id="empty-suffix"),
        pytest.param("bytes=100-", SIZE, id="start-at-size"),
        pytest.param("bytes=150-200", SIZE, id="start-beyond-size"),
        pytest.param(f"bytes={HUGE}-", SIZE, id="huge-start"),
        pytest.param(f"bytes={HUGE}-{HUGE}", SIZE, id="huge-start-and-end"),
        pytest.param("bytes=0-", 0, id="empty-file"),
        pytest.param("bytes=-5", 0, id="suffix-of-empty-file"),
    ],
)
def test_byte_range_that_no_byte_satisfies_is_unsatisfiable(header: str, size: int) -> None:
    assert byte_range(header, size) == UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=9-3", id="last-before-first"),
        pytest.param(f"bytes={HUGE}-1", id="huge-first-before-last"),
        pytest.param("items=0-1", id="other-unit"),
        pytest.param("bytes=0-1,4-5", id="several-ranges"),
        pytest.param("bytes=0-1, -5", id="several-ranges-with-suffix"),
        pytest.param("bytes=abc", id="letters"),
        pytest.param("bytes=1-x", id="letter-end"),
        pytest.param("bytes=,", id="empty-list"),
        pytest.param("bytes=--1", id="negative-suffix"),
        pytest.param("bytes=-", id="no-positions"),
        pytest.param("bytes=", id="no-spec"),
        pytest.param("bytes 0-1", id="no-equals"),
        pytest.param("", id="empty"),
    ],
)
def test_byte_range_ignores_what_it_cannot_serve_as_one_range(header: str) -> None:
    assert byte_range(header, SIZE) is None


# -- not_modified ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, False, id="unconditional"),
        pytest.param({"If-None-Match": ETAG}, True, id="inm-same-tag"),
        pytest.param({"If-None-Match": f"W/{ETAG}"}, True, id="inm-weak-comparison"),
        pytest.param({"If-None-Match": f'"other", {ETAG}'}, True, id="inm-in-a-list"),
        pytest.param({"If-None-Match": f'W/"other",W/{ETAG}'}, True, id="inm-weak-in-a-list"),
        pytest.param({"If-None-Match": "*"}, True, id="inm-star"),
        pytest.param({"If-None-Match": '"other"'}, False, id="inm-other-tag"),
        pytest.param({"If-None-Match": ETAG.upper()}, False, id="inm-tags-are-case-sensitive"),
        pytest.param({"If-None-Match": ETAG.strip('"')}, False, id="inm-unquoted"),
        pytest.param(
            {"If-None-Match": '"other"', "If-Modified-Since": LAST_MODIFIED},
            False,
            id="inm-wins-over-ims-200",
        ),
        pytest.param(
            {"If-None-Match": ETAG, "If-Modified-Since": SECOND_EARLIER}, True, id="inm-wins-over-ims-304"
        ),
        pytest.param(
            {"If-None-Match": "garbage", "If-Modified-Since": LAST_MODIFIED},
            False,
            id="inm-invalid-still-wins",
        ),
        pytest.param({"If-Modified-Since": LAST_MODIFIED}, True, id="ims-same-second-as-subsecond-mtime"),
        pytest.param({"If-Modified-Since": SECOND_LATER}, True, id="ims-later"),
        pytest.param({"If-Modified-Since": SECOND_EARLIER}, False, id="ims-earlier"),
        pytest.param({"If-Modified-Since": "Monday, 06-May-24 07:08:09 GMT"}, True, id="ims-rfc850-date"),
        pytest.param({"If-Modified-Since": "Mon May  6 07:08:09 2024"}, True, id="ims-asctime-date"),
        pytest.param({"If-Modified-Since": "Mon May  6 07:08:08 2024"}, False, id="ims-asctime-earlier"),
        pytest.param({"If-Modified-Since": "Mon, 06 May 2024 09:08:09 +0200"}, True, id="ims-other-zone"),
        pytest.param({"If-Modified-Since": "yesterday"}, False, id="ims-not-a-date"),
        pytest.param({"If-Modified-Since": ""}, False, id="ims-empty"),
        pytest.param(
            {"If-Modified-Since": "Sun, 22 Nov 99999999999 16:48:32 GMT"}, False, id="ims-out-of-range"
        ),
        pytest.param({"If-Modified-Since": "Mon, 06 May 2024 07:08:09 -0000"}, False, id="ims-unknown-zone"),
    ],
)
def test_not_modified_evaluates_if_none_match_before_if_modified_since(
    headers: dict[str, str], expected: bool
) -> None:
    assert not_modified(headers.get, stored_file()) is expected


# -- answer: If-Range ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        pytest.param(ETAG, 206, id="strong-etag-matches"),
        pytest.param(LAST_MODIFIED, 206, id="exact-date-matches"),
        pytest.param(f"W/{ETAG}", 200, id="weak-etag-never-matches"),
        pytest.param('"stale"', 200, id="other-etag"),
        pytest.param(SECOND_EARLIER, 200, id="earlier-date"),
        pytest.param(SECOND_LATER, 200, id="later-date"),
        pytest.param("not a validator", 200, id="garbage"),
    ],
)
def test_answer_applies_the_range_only_when_if_range_matches(if_range: str, status: int) -> None:
    reply = answer(stored_file(), request(Range="bytes=0-9", If_Range=if_range), CACHE_CONTROL)

    assert reply.status == status
    if status == 206:
        assert (reply.start, reply.length) == (0, 10)
        assert headers_of(reply)["Content-Range"] == f"bytes 0-9/{SIZE}"
    else:
        assert (reply.start, reply.length) == (0, SIZE)
        assert "Content-Range" not in headers_of(reply)


def test_answer_ignores_if_range_without_range() -> None:
    reply = answer(stored_file(), request(If_Range='"stale"'), CACHE_CONTROL)

    assert (reply.status, reply.start, reply.length) == (200, 0, SIZE)


# -- answer: statuses and headers ------------------------------------------------------------------


def test_answer_sends_the_whole_file_with_validators() -> None:
    reply = answer(stored_file(), request(), CACHE_CONTROL)

    assert (reply.status, reply.start, reply.length) == (200, 0, SIZE)
    assert headers_of(reply) == {
        "Content-Type": "image/png",
        "ETag": ETAG,
        "Last-Modified": LAST_MODIFIED,
        "Cache-Control": CACHE_CONTROL,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Content-Length": str(SIZE),
    }


@pytest.mark.parametrize(
    "conditions",
    [
        pytest.param({"If-None-Match": ETAG}, id="if-none-match"),
        pytest.param({"If-Modified-Since": LAST_MODIFIED}, id="if-modified-since"),
        pytest.param({"If-None-Match": ETAG, "Range": "bytes=0-9"}, id="before-range"),
        pytest.param({"If-None-Match": ETAG, "Range": "bytes=500-"}, id="before-unsatisfiable-range"),
    ],
)
def test_answer_304_has_validators_and_no_body(conditions: dict[str, str]) -> None:
    reply = answer(stored_file(), conditions.get, CACHE_CONTROL)

    assert (reply.status, reply.length) == (304, 0)
    headers = headers_of(reply)
    assert headers["ETag"] == ETAG
    assert headers["Last-Modified"] == LAST_MODIFIED
    assert headers["Cache-Control"] == CACHE_CONTROL
    assert "Content-Length" not in headers
    assert "Content-Range" not in headers


@pytest.mark.parametrize(
    ("range_header", "start", "stop"),
    [
        pytest.param("bytes=10-19", 10, 20, id="closed"),
        pytest.param("bytes=90-", 90, SIZE, id="open-ended"),
        pytest.param("bytes=-5", SIZE - 5, SIZE, id="suffix"),
        pytest.param("bytes=90-1000", 90, SIZE, id="clamped"),
    ],
)
def test_answer_206_describes_the_part_it_sends(range_header: str, start: int, stop: int) -> None:
    reply = answer(stored_file(), request(Range=range_header, If_None_Match='"other"'), CACHE_CONTROL)

    assert (reply.status, reply.start, reply.length) == (206, start, stop - start)
    headers = headers_of(reply)
    assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert headers["Content-Length"] == str(stop - start)
    assert headers["ETag"] == ETAG
    assert headers["Content-Type"] == "image/png"


def unsatisfiable_reply(range_header: str) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body a GET with ``range_header`` gets when ``answer`` finds no byte to
    send: ``answer`` raises the failure and the web layer's one error table makes the reply."""
    with pytest.raises(RangeNotSatisfiable) as raised:
        answer(stored_file(), request(Range=range_header), CACHE_CONTROL)
    status, headers, body = error_problem(raised.value, "GET", "/original/x")
    return status, dict(headers), body


@pytest.mark.parametrize("range_header", ["bytes=-0", "bytes=100-", f"bytes={HUGE}-"])
def test_answer_416_names_the_size_in_a_problem(range_header: str) -> None:
    status, headers, body = unsatisfiable_reply(range_header)

    assert status == 416
    assert headers["Content-Range"] == f"bytes */{SIZE}"
    assert headers["X-Content-Type-Options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == 416
    assert problem["detail"] == f"the file has {SIZE} bytes"


@pytest.mark.parametrize(
    "range_header", ["", "items=0-1", "bytes=0-1,4-5", "bytes=9-3", "bytes=abc", "bytes=--1"]
)
def test_answer_ignores_a_range_it_does_not_serve_and_sends_the_whole_file(range_header: str) -> None:
    reply = answer(stored_file(), request(Range=range_header), CACHE_CONTROL)

    assert (reply.status, reply.start, reply.length) == (200, 0, SIZE)
    headers = headers_of(reply)
    assert headers["Content-Length"] == str(SIZE)
    assert "Content-Range" not in headers
