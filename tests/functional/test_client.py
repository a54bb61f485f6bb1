"""``pymager.client`` against a real server: round trips, every problem type the client can provoke
mapped to its class, Bearer keys on writes, signed derived URLs, and a real 503 retried after its
``Retry-After``."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pymager.client import (
    CLASS_BY_STATUS,
    CLASS_BY_TYPE,
    BadRequest,
    Client,
    CorruptImage,
    DecodingLimit,
    Forbidden,
    ImageAlreadyExists,
    ImageNotFound,
    InvalidFocus,
    InvalidImageId,
    NotFound,
    ProblemError,
    Retry,
    ServiceUnavailable,
    SignatureInvalid,
    SignatureKeyUnknown,
    SignatureRequired,
    SizeNotAllowed,
    TransportError,
    Unauthorized,
    UnsupportedImage,
    UploadTooLarge,
    problem_from,
)
from pymager.config import hash_api_key
from pymager.web.errors import STATUS_BY_ERROR, problem_type
from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import MAX_UPLOAD_BYTES, Server, free_port, start_server, stop_and_check_log

KEY = "client-test-key-0123456789"
URL_KEYS = "client-1:client-test-secret-0123456789"
MAX_IMAGE_SIDE = 1500
DEADLINE = 60.0


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Writes need ``KEY``; derived misses need a URL signed with ``URL_KEYS``."""
    directory = tmp_path_factory.mktemp("server-client")
    running = start_server(
        directory,
        sqlite_url(directory / "registry.sqlite3"),
        max_image_side=MAX_IMAGE_SIDE,
        **{"auth.api_keys": hash_api_key(KEY), "auth.url_keys": URL_KEYS},
    )
    yield running
    stop_and_check_log(running)


@pytest.fixture
def client(locked: Server) -> Iterator[Client]:
    with Client(locked.base_url, key=KEY, url_keys=URL_KEYS, timeout=30) as opened:
        yield opened


@pytest.fixture
def new_id() -> str:
    return f"client-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def routes_of_listing(locked: Server) -> None:
    """Skip while the server has no ``/original/<id>/info`` and ``/original`` listing (checked once)."""
    probe = requests.get(locked.url("/original/probe-for-the-route/info"), timeout=10)
    if probe.status_code == 404 and probe.json().get("type", "").endswith(":no-such-resource"):
        pytest.skip("the server has no GET /original/<id>/info and GET /original listing yet")


# The table of problem types


def test_client_errors_name_every_problem_type_of_the_server() -> None:
    for error_class, status in STATUS_BY_ERROR.items():
        urn = problem_type(error_class)
        assert urn in CLASS_BY_TYPE, f"no client class for {urn}"
        group = CLASS_BY_STATUS.get(status)
        if group is not None:
            assert issubclass(CLASS_BY_TYPE[urn], group), (urn, group)


def test_client_errors_map_an_unknown_type_to_its_status() -> None:
    body = b'{"type": "urn:pymager:problem:from-the-future", "title": "New", "status": 404, "detail": "d"}'

    error = problem_from(404, "application/problem+json", body, None)
    plain = problem_from(418, "text/plain", b"I'm a teapot", "7")

    assert type(error) is NotFound
    assert (error.status, error.title, error.detail) == (404, "New", "d")
    assert error.type == "urn:pymager:problem:from-the-future"
    assert type(plain) is ProblemError
    assert (plain.status, plain.detail, plain.retry_after) == (418, "I'm a teapot", 7.0)


# Round trips


def test_client_upload_download_delete_round_trip(client: Client, new_id: str, tmp_path: Path) -> None:
    data = images.jpeg(64, 48)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)

    stored = client.upload(new_id, path, focus=(0.25, 0.75))
    downloaded = client.download(new_id)
    streamed = io.BytesIO()
    size = client.download_to(new_id, streamed)
    client.download_to(new_id, tmp_path / "copy.jpg")
    digest = client.sha256(new_id)
    client.delete(new_id)

    assert (stored["id"], stored["format"], stored["width"], stored["height"]) == (new_id, "JPEG", 64, 48)
    assert stored["focus"] == [0.25, 0.75]
    assert downloaded == data == streamed.getvalue() == (tmp_path / "copy.jpg").read_bytes()
    assert size == len(data)
    assert digest == hashlib.sha256(data).hexdigest()
    with pytest.raises(ImageNotFound) as missing:
        client.download(new_id)
    assert missing.value.status == 404
    assert missing.value.type == "urn:pymager:problem:image-not-found"


def test_client_upload_takes_a_file_object(client: Client, new_id: str) -> None:
    data = images.png(40, 30)

    stored = client.upload(new_id, io.BytesIO(data))

    assert stored["format"] == "PNG"
    assert client.download(new_id) == data


def test_client_fetches_a_signed_derived_image(client: Client, new_id: str) -> None:
    client.upload(new_id, io.BytesIO(images.jpeg(300, 200)))

    url = client.derived_url(new_id, 100, 0, "webp", mode="fit")
    data = client.derived(new_id, 100, 0, "webp", mode="fit")

    assert url.startswith(f"{client.base_url}/derived/{new_id}-100x0-fit.webp?s=client-1.")
    assert data[:4] == b"RIFF"
    assert client.pregenerate(new_id, 50, 50, "png") > 0


# Problem types


@pytest.mark.parametrize(
    ("data", "error_class"),
    [
        (b"plain text, no picture", UnsupportedImage),
        (images.jpeg(64, 48)[:200], CorruptImage),
        (images.png(MAX_IMAGE_SIDE + 1, 8), DecodingLimit),
        (b"\0" * (MAX_UPLOAD_BYTES + 1), UploadTooLarge),
    ],
    ids=["unsupported", "corrupt", "decoding-limit", "too-large"],
)
def test_client_upload_refusals_raise_their_problem_class(
    client: Client, new_id: str, data: bytes, error_class: type[ProblemError]
) -> None:
    with pytest.raises(error_class) as refused:
        client.upload(new_id, io.BytesIO(data))

    assert refused.value.type == f"urn:pymager:problem:{error_class.problem}"
    assert refused.value.detail
    if error_class is DecodingLimit:
        assert isinstance(refused.value, DecodingLimit)
        assert refused.value.limit == "max_image_side"


def test_client_upload_of_a_taken_id_raises_image_already_exists(client: Client, new_id: str) -> None:
    client.upload(new_id, io.BytesIO(images.jpeg(20, 20)))

    with pytest.raises(ImageAlreadyExists) as taken:
        client.upload(new_id, io.BytesIO(images.jpeg(20, 20)))

    assert taken.value.status == 409


def test_client_bad_id_and_focus_raise_bad_request_classes(client: Client, new_id: str) -> None:
    with pytest.raises(InvalidImageId) as bad_id:
        client.upload("not an id!", io.BytesIO(images.jpeg(20, 20)))
    with pytest.raises(InvalidFocus) as bad_focus:
        client.upload(new_id, io.BytesIO(images.jpeg(20, 20)), focus="2,2")

    assert isinstance(bad_id.value, BadRequest)
    assert isinstance(bad_focus.value, BadRequest)


def test_client_sends_its_key_as_bearer_on_writes(locked: Server, new_id: str) -> None:
    with Client(locked.base_url) as anonymous, Client(locked.base_url, key=KEY) as keyed:
        with pytest.raises(Unauthorized) as refused:
            anonymous.upload(new_id, io.BytesIO(images.jpeg(20, 20)))
        keyed.upload(new_id, io.BytesIO(images.jpeg(20, 20)))
        with pytest.raises(Unauthorized):
            anonymous.delete(new_id)
        assert anonymous.download(new_id)  # reads stay public
        keyed.delete(new_id)

    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("url_keys", "error_class"),
    [
        (None, SignatureRequired),
        ("client-1:not-the-secret-of-client-1", SignatureInvalid),
        ("other-key:client-test-secret-0123456789", SignatureKeyUnknown),
    ],
    ids=["unsigned", "wrong-secret", "unknown-key"],
)
def test_client_derived_misses_without_a_valid_signature_raise_their_class(
    locked: Server, client: Client, new_id: str, url_keys: str | None, error_class: type[ProblemError]
) -> None:
    client.upload(new_id, io.BytesIO(images.jpeg(64, 48)))

    with Client(locked.base_url, url_keys=url_keys) as other, pytest.raises(error_class) as refused:
        other.derived(new_id, 32, 32, "jpg")

    assert isinstance(refused.value, Forbidden)


def test_client_size_over_max_dimension_raises_size_not_allowed(client: Client, new_id: str) -> None:
    client.upload(new_id, io.BytesIO(images.jpeg(64, 48)))

    with pytest.raises(SizeNotAllowed):
        client.derived(new_id, 5000, 10, "jpg")


def test_client_unreachable_server_raises_transport_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", timeout=5) as nowhere, pytest.raises(TransportError):
        nowhere.download("anything")


# URLs


def test_client_derived_url_signs_like_the_readme_test_vector() -> None:
    with Client("http://images.example", url_keys="web-2026:pymager-test-vector-secret") as client:
        url = client.derived_url("sample", 200, 200, "webp", mode="fit")

    assert url == (
        "http://images.example/derived/sample-200x200-fit.webp"
        "?s=web-2026.tKrKwbksI6_krzpOsWotfC09enYaKjwDLUSntyh9574"
    )


@pytest.mark.parametrize(
    ("image_id", "width", "height", "fmt", "mode"),
    [
        ("bad id", 10, 10, "jpg", None),
        ("a" * 129, 10, 10, "jpg", None),
        ("ok", -1, 10, "jpg", None),
        ("ok", 0, 10, "jpg", None),  # 0 is for fit only
        ("ok", 0, 0, "jpg", "fit"),
        ("ok", 10, 10, "bmp", None),
        ("ok", 10, 10, "jpg", "stretch"),
        ("ok", True, 10, "jpg", None),
    ],
)
def test_client_derived_url_refuses_what_the_grammar_refuses(
    image_id: str, width: int, height: int, fmt: str, mode: str | None
) -> None:
    with Client("http://images.example") as client, pytest.raises(ValueError, match=r"."):
        client.derived_url(image_id, width, height, fmt, mode)


def test_client_derived_url_writes_fill_as_no_mode() -> None:
    with Client("http://images.example/") as client:
        assert client.derived_url("a-b", 800, 600, "jpg", mode="fill") == (
            "http://images.example/derived/a-b-800x600.jpg"
        )
        assert client.derived_url("a-b", 800, 0, "auto", mode="fit") == (
            "http://images.example/derived/a-b-800x0-fit.auto"
        )


# The info route and the listing (skipped until the server has them)


def test_client_info_describes_the_original(client: Client, new_id: str, routes_of_listing: None) -> None:
    data = images.jpeg(64, 48)
    client.upload(new_id, io.BytesIO(data), focus=(0.5, 0.25))
    client.derived(new_id, 32, 32, "jpg")

    info = client.info(new_id)

    assert info["id"] == new_id
    assert (info["format"], info["width"], info["height"], info["bytes"]) == ("JPEG", 64, 48, len(data))
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["focus"] == [0.5, 0.25]
    assert [(d["width"], d["height"], d["format"]) for d in info["derived"]] == [(32, 32, "JPEG")]
    with pytest.raises(ImageNotFound):
        client.info(f"{new_id}-missing")


def test_client_iter_originals_follows_the_next_cursor(
    tmp_path: Path, routes_of_listing: None, locked: Server
) -> None:
    # A server of its own, so the listing holds exactly what this test stored.
    server = start_server(tmp_path / "listing", sqlite_url(tmp_path / "listing.sqlite3"))
    try:
        with Client(server.base_url) as client:
            stored = {f"list-{index:02d}" for index in range(7)}
            for image_id in sorted(stored):
                client.upload(image_id, io.BytesIO(images.jpeg(16, 16)))

            listed = [item["id"] for item in client.iter_originals(limit=3)]
    finally:
        stop_and_check_log(server)

    assert sorted(listed) == sorted(stored)
    assert len(listed) == len(stored)


# A real 503, retried


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One cold request at a time: a second one is refused at once with 503 + Retry-After."""
    directory = tmp_path_factory.mktemp("server-client-capped")
    running = start_server(
        directory,
        sqlite_url(directory / "registry.sqlite3"),
        max_waiting_generations=1,
        max_concurrent_generations=1,
        wait_timeout=5,
    )
    yield running
    stop_and_check_log(running)


def test_client_retries_a_503_after_its_retry_after(capped: Server, new_id: str) -> None:
    with Client(capped.base_url) as setup:
        setup.upload(new_id, io.BytesIO(images.png(2000, 2000)))
    retried: list[Retry] = []
    retried_once = threading.Event()

    def on_retry(retry: Retry) -> None:
        retried.append(retry)
        retried_once.set()

    # Slow cold requests, one after another, until the client under test has been refused once: each
    # holds the only place for a cold request for about a second.
    def keep_a_cold_request_in_flight() -> None:
        side = 2000
        while not retried_once.is_set() and side > 1000:
            requests.get(capped.url(f"/derived/{new_id}-{side}x{side}-pad.png"), timeout=60)
            side -= 1

    busy = threading.Thread(target=keep_a_cold_request_in_flight)
    busy.start()
    try:
        refused_probe = wait_for_a_refusal(capped, new_id)
        with Client(capped.base_url, retries=5, on_retry=on_retry) as client:
            data = client.derived(new_id, 64, 64, "jpg")
    finally:
        retried_once.set()
        busy.join()

    assert refused_probe.headers["Retry-After"]
    assert data[:2] == b"\xff\xd8"
    assert retried, "the client was never refused"
    assert isinstance(retried[0].error, ServiceUnavailable)
    assert retried[0].error.retry_after is not None
    assert retried[0].wait == retried[0].error.retry_after >= 1


def wait_for_a_refusal(server: Server, image_id: str) -> requests.Response:
    """Poll (with a deadline) with fresh cold requests until one is refused: a cold request is then in
    flight. Each probe asks for a size of its own, so an admitted probe does not make a later one a hit."""
    deadline = time.monotonic() + DEADLINE
    for side in range(10, 1000):
        response = requests.get(server.url(f"/derived/{image_id}-{side}x{side + 1}.jpg"), timeout=60)
        if response.status_code == 503:
            return response
        assert time.monotonic() < deadline, "no cold request was refused"
    raise AssertionError("no cold request was refused")


def test_client_does_not_wait_longer_than_max_retry_wait() -> None:
    body = b'{"type": "urn:pymager:problem:service-unavailable", "title": "t", "status": 503, "detail": "d"}'
    error = problem_from(503, "application/problem+json", body, "120")

    with Client("http://images.example", max_retry_wait=30) as client:
        assert client._retry_wait(error, 1) is None
    with Client("http://images.example", max_retry_wait=300, retries=2) as client:
        assert client._retry_wait(error, 1) == 120
        assert client._retry_wait(error, 3) is None
