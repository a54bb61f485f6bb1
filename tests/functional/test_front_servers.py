"""What both shipped front servers (deploy/apache, deploy/nginx) promise alike: derived hits, plain and
``auto``, served from disk without entering Python, with the headers pymager itself sends. What only one
of them promises is in test_apache.py and test_nginx.py; the HTTP contract runs behind both through the
``server`` fixture."""

from __future__ import annotations

import pytest
import requests

from tests import images
from tests.browsers import BROWSERS
from tests.functional.conftest import FRONT_CACHE_CONTROL_DERIVED, Server, upload
from tests.functional.test_apache import python_counts
from tests.functional.test_auto_format import PICTURES, get_auto


@pytest.fixture(
    params=[
        pytest.param("apache_server", marks=pytest.mark.apache, id="apache"),
        pytest.param("nginx_server", marks=pytest.mark.nginx, id="nginx"),
    ]
)
def front(request: pytest.FixtureRequest) -> Server:
    """pymager behind one of the shipped front servers, which serve hits without Python."""
    server: Server = request.getfixturevalue(request.param)
    return server


@pytest.mark.parametrize("kind", PICTURES)
def test_the_front_server_chooses_as_pymager_does_for_hits_without_python(
    front: Server, image_id: str, kind: str
) -> None:
    traits, make = PICTURES[kind]
    assert upload(front, image_id, make()).status_code == 201
    segment = f"{image_id}-30x20-fit.auto"
    # The first round goes to the application: it publishes the traits and makes each format once.
    first = {name: get_auto(front, segment, browser.accept) for name, browser in BROWSERS.items()}
    before = python_counts(front)

    for name, browser in BROWSERS.items():
        hit = get_auto(front, segment, browser.accept)
        expected = browser.expected(traits)
        assert hit.status_code == 200, name
        assert hit.headers["Content-Type"] == expected.mime_type, name
        assert hit.content == first[name].content, name
        assert hit.headers["Vary"] == "Accept", name
        assert hit.headers["Content-Location"] == f"/derived/{image_id}-30x20-fit.{expected.extension}", name
        assert hit.headers["ETag"].removeprefix("W/") == first[name].headers["ETag"].removeprefix("W/"), name
        assert hit.headers["Cache-Control"] == FRONT_CACHE_CONTROL_DERIVED, name

    assert python_counts(front) == before  # not one of these reached the application


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("60x40.webp", "image/webp"),
        ("60x40-fit.jpg", "image/jpeg"),
        ("0x40-fit.png", "image/png"),
        ("60x0-fit.jpeg", "image/jpeg"),
        ("60x40-pad.gif", "image/gif"),
        ("60x40.avif", "image/avif"),
    ],
)
def test_the_front_server_serves_a_cache_hit_without_entering_python(
    front: Server, image_id: str, name: str, content_type: str
) -> None:
    """Hits of every mode and format, as the shipped site computes their stored path from the URL."""
    assert upload(front, image_id, images.jpeg(300, 200)).status_code == 201
    url = front.url(f"/derived/{image_id}-{name}")
    miss = requests.get(url, timeout=30)
    assert miss.status_code == 200
    before = python_counts(front)

    hits = [requests.get(url, timeout=10) for _ in range(5)]
    head = requests.head(url, timeout=10)
    signed_or_not = requests.get(f"{url}?s=anything", timeout=10)

    assert python_counts(front) == before  # not one of these requests reached the application
    for hit in [*hits, signed_or_not]:
        assert hit.status_code == 200
        assert hit.content == miss.content
        assert hit.headers["Content-Type"] == content_type
        assert hit.headers["Allow"] == "GET, HEAD"
        assert hit.headers["Cache-Control"] == FRONT_CACHE_CONTROL_DERIVED
        assert hit.headers["X-Content-Type-Options"] == "nosniff"
        assert hit.headers["ETag"].removeprefix("W/") == miss.headers["ETag"]
        assert "Vary" not in hit.headers
        assert "Content-Location" not in hit.headers
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(miss.content))
