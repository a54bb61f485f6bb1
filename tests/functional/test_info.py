"""``/original/<id>/info`` and the ``/original`` listing over HTTP, on every server kind: what the
registry knows of an original (upright size, checksum, focal point, placeholder, its ready derived
images as made), keyset pages with opaque cursors, validators, and who may list."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator

import pytest
import requests
import thumbhash
from PIL import Image

from pymager.config import hash_api_key
from pymager.signing import UrlKey, UrlSigner
from tests import images
from tests.functional.conftest import (
    SERVER_KINDS,
    Server,
    assert_problem,
    start_kind,
    stop_and_check_log,
    upload,
)

KEY = "listing-key-for-tests"
URL_KEY = UrlKey("k1", b"the url secret of the tests")


def info(server: Server, image_id: str, **headers: str) -> requests.Response:
    return requests.get(server.url(f"/original/{image_id}/info"), headers=headers, timeout=30)


def test_info_describes_the_original_upright_with_its_placeholder(server: Server, image_id: str) -> None:
    data = images.jpeg(80, 40, color=(220, 20, 30), orientation=6, gps=True)
    assert upload(server, image_id, data, form={"focus": "0.25,0.75"}).status_code == 201

    response = info(server, image_id)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert {key: document[key] for key in ("id", "format", "width", "height", "bytes", "sha256")} == {
        "id": image_id,
        "format": "JPEG",
        "width": 40,  # orientation 6: the 80x40 stored picture stands 40 wide
        "height": 80,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert document["focus"] == [0.25, 0.75]
    assert (document["animated"], document["alpha"]) == (False, False)
    red, green, blue = (int(document["colour"][i : i + 2], 16) for i in (1, 3, 5))
    assert red > 180, document["colour"]
    assert max(green, blue) < 70, document["colour"]
    hashed = base64.b64decode(document["thumbhash"])
    assert thumbhash.thumb_hash_to_approximate_aspect_ratio(hashed) == pytest.approx(0.5, abs=0.1)
    assert document["derived"] == []
    assert not {"exif", "gps", "GPSInfo"} & set(document)


def test_info_lists_the_ready_derived_images_as_made(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.jpeg(400, 200)).status_code == 201
    for name in ("100x100-fit.webp", "60x60.png"):
        assert requests.get(server.url(f"/derived/{image_id}-{name}"), timeout=30).status_code == 200

    derived = info(server, image_id).json()["derived"]

    by_url = {entry["url"]: entry for entry in derived}
    assert set(by_url) == {f"/derived/{image_id}-60x60.png", f"/derived/{image_id}-100x100-fit.webp"}
    fit = by_url[f"/derived/{image_id}-100x100-fit.webp"]
    assert (fit["format"], fit["mode"], fit["width"], fit["height"]) == ("WEBP", "fit", 100, 50)
    served = requests.get(server.url(fit["url"]), timeout=30)
    assert fit["bytes"] == len(served.content)
    assert Image.open(io.BytesIO(served.content)).size == (100, 50)
    assert by_url[f"/derived/{image_id}-60x60.png"]["width"] == 60


def test_info_is_revalidated_and_changes_with_its_derived_images(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.png(30, 20)).status_code == 201
    first = info(server, image_id)
    assert info(server, image_id, **{"If-None-Match": first.headers["ETag"]}).status_code == 304
    head = requests.head(server.url(f"/original/{image_id}/info"), timeout=30)
    assert (head.status_code, head.content, head.headers["ETag"]) == (200, b"", first.headers["ETag"])
    assert requests.get(server.url(f"/derived/{image_id}-10x10.gif"), timeout=30).status_code == 200
    assert info(server, image_id, **{"If-None-Match": first.headers["ETag"]}).status_code == 200


def test_info_of_an_unknown_or_invalid_id_is_a_problem(server: Server, image_id: str) -> None:
    assert_problem(info(server, image_id), 404, problem="image-not-found")
    assert_problem(info(server, "bad%21id"), 400, problem="invalid-image-id")
    response = requests.get(server.url(f"/original/{image_id}/info/"), timeout=30)
    assert_problem(response, 404, problem="no-such-resource")


# -- the listing: a server of its own, so no other test's originals show ----------------------------


@pytest.fixture(scope="module", params=SERVER_KINDS)
def lister(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_kind(request, tmp_path_factory.mktemp("lister"))
    yield running
    stop_and_check_log(running)


def listing(server: Server, query: str = "", **headers: str) -> requests.Response:
    return requests.get(server.url(f"/original{query}"), headers=headers, timeout=30)


def test_the_listing_pages_through_every_original_by_id(lister: Server) -> None:
    ids = [f"list-{n:02d}" for n in (5, 1, 4, 2, 3)]
    for image_id in ids:
        assert upload(lister, image_id, images.jpeg(20, 10)).status_code == 201

    seen, query, pages = [], "?limit=2", 0
    while True:
        response = listing(lister, query)
        assert response.status_code == 200, response.text
        document = response.json()
        seen += [item["id"] for item in document["items"]]
        pages += 1
        if document["next"] is None:
            assert "Link" not in response.headers
            break
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"')
        query = link[len("</original") : -len('>; rel="next"')]
    assert seen == sorted(ids)
    assert pages == 3
    item = listing(lister, "?limit=1").json()["items"][0]
    assert set(item) == {"id", "format", "width", "height", "bytes", "sha256", "created"}


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=1001",
        "?limit=abc",
        "?limit=-1",
        "?after=not-a-cursor!",
        "?order=desc",
        "?limit=1&limit=2",
    ],
)
def test_bad_listing_parameters_are_a_400_problem(lister: Server, query: str) -> None:
    assert_problem(listing(lister, query), 400, problem="invalid-listing")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from tests.conftest import sqlite_url
    from tests.functional.conftest import start_server

    directory = tmp_path_factory.mktemp("guarded")
    running = start_server(
        directory,
        sqlite_url(directory / "registry.sqlite3"),
        **{
            "auth.api_keys": hash_api_key(KEY),
            "auth.url_keys": f"{URL_KEY.key_id}:{URL_KEY.secret.decode()}",
        },
    )
    yield running
    stop_and_check_log(running)


def test_with_api_keys_the_listing_needs_a_key(guarded: Server) -> None:
    assert_problem(listing(guarded), 401, problem="unauthorized")
    assert listing(guarded, Authorization=f"Bearer {KEY}").status_code == 200


def test_info_signs_derived_urls_only_for_a_key_holder(guarded: Server) -> None:
    data = images.jpeg(40, 20)
    assert (
        upload(guarded, "signed", data, auth=None, headers={"Authorization": f"Bearer {KEY}"}).status_code
        == 201
    )
    path = "/derived/signed-10x10.jpg"
    signed_path = UrlSigner([URL_KEY]).sign(path)
    assert requests.get(guarded.url(signed_path), timeout=30).status_code == 200

    anonymous = info(guarded, "signed").json()["derived"]
    holder = info(guarded, "signed", Authorization=f"Bearer {KEY}").json()["derived"]

    assert [entry["url"] for entry in anonymous] == [path]
    assert [entry["url"] for entry in holder] == [signed_path]
