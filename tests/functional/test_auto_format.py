"""``auto`` derived URLs over HTTP: the format each real browser's Accept header earns, served as the
very file of the concrete URL (same bytes, same ETag), with ``Vary: Accept`` and ``Content-Location``;
behind Apache, hits chosen by the shipped site without Python; each chosen format made once however
many mixed requests race for a cold key. On every server kind (SQLite, PostgreSQL, Apache)."""

from __future__ import annotations

import collections
from collections.abc import Callable

import pytest
import requests

from pymager.domain import ImageFormat, Traits
from tests import images
from tests.browsers import ALPHA, ANIMATED, BROWSERS, OPAQUE
from tests.functional.conftest import Server, all_at_once, upload

PICTURES: dict[str, tuple[Traits, Callable[[], bytes]]] = {
    "opaque": (OPAQUE, lambda: images.jpeg(64, 48)),
    "alpha": (ALPHA, lambda: images.png(64, 48, mode="RGBA")),
    "animated": (ANIMATED, lambda: images.gif(64, 48, frames=3)),
}


def get_auto(server: Server, segment: str, accept: str | None, **headers: str) -> requests.Response:
    sent = dict(headers) if accept is None else {"Accept": accept, **headers}
    session = requests.Session()
    if accept is None:
        del session.headers["Accept"]  # requests sends "*/*" unless told not to: send no Accept at all
    return session.get(server.url(f"/derived/{segment}"), headers=sent, timeout=60)


def assert_is_the_concrete_file(
    server: Server, image_id: str, response: requests.Response, expected: ImageFormat
) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == expected.mime_type
    assert response.headers["Vary"] == "Accept"
    location = f"/derived/{image_id}-30x20.{expected.extension}"
    assert response.headers["Content-Location"] == location
    concrete = requests.get(server.url(location), timeout=60)
    assert concrete.content == response.content
    assert concrete.headers["ETag"].removeprefix("W/") == response.headers["ETag"].removeprefix("W/")
    assert "Vary" not in concrete.headers  # a concrete URL means one file whatever the Accept


@pytest.mark.parametrize("kind", PICTURES)
def test_each_browser_gets_the_format_of_the_table_as_the_concrete_file(
    server: Server, image_id: str, kind: str
) -> None:
    traits, make = PICTURES[kind]
    assert upload(server, image_id, make()).status_code == 201
    for name, browser in BROWSERS.items():
        response = get_auto(server, f"{image_id}-30x20.auto", browser.accept)
        try:
            assert_is_the_concrete_file(server, image_id, response, browser.expected(traits))
        except AssertionError as failure:
            raise AssertionError(f"{name}: {failure}") from failure
    assert server.derived_names(image_id, ".traits-*") == [f".traits-{traits.kind}"]


def test_an_auto_answer_is_revalidated_by_its_etag(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.jpeg(64, 48)).status_code == 201
    first = get_auto(server, f"{image_id}-30x20.auto", BROWSERS["chrome"].accept)
    again = get_auto(
        server,
        f"{image_id}-30x20.auto",
        BROWSERS["chrome"].accept,
        **{"If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304
    assert again.headers["Vary"] == "Accept"
    assert again.headers["Content-Location"] == f"/derived/{image_id}-30x20.avif"


def test_auto_of_an_unknown_original_is_a_404_problem(server: Server, image_id: str) -> None:
    response = get_auto(server, f"{image_id}-30x20.auto", "image/webp")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_mixed_concurrent_auto_requests_for_a_cold_key_make_each_chosen_format_once(
    server: Server, image_id: str
) -> None:
    assert upload(server, image_id, images.jpeg(640, 480)).status_code == 201
    headers = [
        BROWSERS[name].accept for name in ("chrome", "safari-15", "curl", "firefox", "android-webview-old")
    ]
    generated_before = server.metric("pymager_derived_generated_total")

    responses = all_at_once(
        100, lambda index: get_auto(server, f"{image_id}-200x150.auto", headers[index % 5])
    )

    types = collections.Counter(response.headers["Content-Type"] for response in responses)
    assert [response.status_code for response in responses] == [200] * 100
    assert types == {"image/avif": 40, "image/webp": 40, "image/jpeg": 20}
    assert server.metric("pymager_derived_generated_total") - generated_before == 3
    assert server.rows(image_id) == (1, 3)
    assert len({response.content for response in responses}) == 3
