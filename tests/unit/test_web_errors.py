"""The one error table: every failure pymager names has its status there, and the README says the same."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from pymager import errors
from pymager.errors import DecodingLimit, MethodNotAllowed, PymagerError, RangeNotSatisfiable, Unauthorized
from pymager.web.errors import CHALLENGES, STATUS_BY_ERROR, error_problem, problem_type

README = Path(__file__).resolve().parents[2] / "README.md"

FAILURES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, PymagerError) and cls is not PymagerError
]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda cls: cls.__name__)
def test_every_failure_has_its_own_row_in_the_table(failure: type[PymagerError]) -> None:
    assert failure in STATUS_BY_ERROR  # its own row, not inherited through a base class


def test_problem_types_name_each_failure_once() -> None:
    types = [problem_type(failure) for failure in FAILURES]
    assert len(set(types)) == len(types)
    assert problem_type(errors.UnsupportedImage) == "urn:pymager:problem:unsupported-image"
    assert problem_type(errors.CorruptImage) == "urn:pymager:problem:corrupt-image"
    assert problem_type(errors.DecodingLimit) == "urn:pymager:problem:decoding-limit"


def test_readme_error_table_states_the_table() -> None:
    """Each row of the README's failure table names classes and the status the code maps them to."""
    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| ((?:`[A-Z]\w+`(?:, )?)+) \| (\d{3})\b", text, re.MULTILINE)
    documented = {name: int(status) for names, status in rows for name in re.findall(r"`(\w+)`", names)}
    assert documented == {failure.__name__: status for failure, status in STATUS_BY_ERROR.items()}


def test_upload_failures_are_400_with_their_own_type() -> None:
    for failure in (errors.UnsupportedImage("x"), errors.CorruptImage("x"), DecodingLimit("x", "max_pixels")):
        status, _, body = error_problem(failure, "POST", "/original/a")
        assert status == 400
        assert json.loads(body)["type"] == problem_type(type(failure))


def test_decoding_limit_problem_names_the_setting() -> None:
    _, _, body = error_problem(DecodingLimit("too many frames", "max_frames"), "POST", "/original/a")
    assert json.loads(body) == {
        "type": "urn:pymager:problem:decoding-limit",
        "title": "Decoding limit exceeded",
        "status": 400,
        "detail": "too many frames",
        "limit": "max_frames",
    }


def test_unauthorized_offers_bearer_and_basic_as_two_headers() -> None:
    status, headers, _ = error_problem(Unauthorized("no key"), "POST", "/original/a")
    assert status == 401
    assert [value for name, value in headers if name == "WWW-Authenticate"] == list(CHALLENGES)
    assert CHALLENGES == ('Bearer realm="pymager"', 'Basic realm="pymager"')


def test_method_not_allowed_lists_the_methods() -> None:
    status, headers, _ = error_problem(MethodNotAllowed("PUT", ("GET", "HEAD")), "PUT", "/health")
    assert status == 405
    assert headers == [("Allow", "GET, HEAD")]


def test_range_not_satisfiable_names_the_size() -> None:
    status, headers, _ = error_problem(RangeNotSatisfiable(1234), "GET", "/original/a")
    assert status == 416
    assert ("Content-Range", "bytes */1234") in headers
