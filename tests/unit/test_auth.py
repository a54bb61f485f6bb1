"""API keys: Bearer, or Basic with the key as password, compared against stored hashes."""

from __future__ import annotations

import base64

import pytest

from pymager.config import hash_api_key
from pymager.errors import Unauthorized
from pymager.web.auth import WriteGuard, presented_key

KEY = "s3cret-key"


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (f"Bearer {KEY}", KEY),
        (f"bearer   {KEY}  ", KEY),
        (basic(f"anyone:{KEY}"), KEY),
        (basic(f":{KEY}"), KEY),  # no user name
        (basic(f"user:{KEY}:with:colons"), f"{KEY}:with:colons"),  # only the first colon separates
        (basic("user-only"), None),
        (basic("user:"), None),
        ("Basic not base64!", None),
        ("Basic " + base64.b64encode(b"u:\xff").decode(), None),  # not UTF-8
        ("Bearer", None),
        ("Digest username=x", None),
        ("", None),
    ],
)
def test_presented_key_reads_bearer_and_basic(header: str, key: str | None) -> None:
    assert presented_key(header) == key


def test_guard_lets_writes_with_a_key_through_either_scheme() -> None:
    guard = WriteGuard(frozenset({hash_api_key(KEY)}))
    guard.check("POST", f"Bearer {KEY}")
    guard.check("DELETE", basic(f"java-client:{KEY}"))
    guard.check("GET", None)  # reads stay public


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "writes need"),
        (f"Bearer {KEY}x", "not valid"),
        (basic(f"user:{KEY}x"), "not valid"),
        (f"Bearer {hash_api_key(KEY)}", "not valid"),
    ],
)
def test_guard_refuses_writes_without_a_valid_key(header: str | None, detail: str) -> None:
    guard = WriteGuard(frozenset({hash_api_key(KEY)}))
    with pytest.raises(Unauthorized, match=detail):
        guard.check("POST", header)


def test_guard_without_keys_lets_everything_through() -> None:
    WriteGuard(frozenset()).check("DELETE", None)
