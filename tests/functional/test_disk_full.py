"""A real server whose data directory is a small tmpfs the test mounts: filled up, uploads and misses get
507 ``storage-full`` with ``Retry-After`` and leave nothing (no row, no file, no temporary file), hits
are still served, deletes free space, ``/health`` says ``"storage": "full"`` with a 200; read-only, writes
get 503 ``storage-failed`` and ``/health`` a 503. Each recovers once the disk is well again. Injected I/O
errors at each step are in tests/integration/test_disk_full.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import disk
from tests.conftest import sqlite_url
from tests.functional.conftest import (
    MAX_UPLOAD_BYTES,
    Server,
    assert_problem,
    raw_post,
    start_server,
    stop_and_check_log,
    upload,
)

MIB = 1024 * 1024
RESERVE = 4 * MIB  # uploads keep 4 MiB free, generation 1 MiB
SMALL = disk.noise_png(400, 400)  # about 480 KB
LARGE = disk.noise_png(700, 700)  # about 1.5 MB, and so is its 700x700 derived image


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with disk.small_filesystem(tmp_path_factory.mktemp("disk") / "data", 16 * MIB) as mounted:
        yield mounted


@pytest.fixture(scope="module")
def server(small: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("disk-server")
    registry = sqlite_url(directory / "registry.sqlite3")  # off the small disk: the registry stays well
    running = start_server(directory, registry, data_directory=small, min_free_bytes=RESERVE)
    yield running
    stop_and_check_log(running)  # no traceback: no 500 on the way


@pytest.fixture(autouse=True)
def roomy(small: Path) -> Iterator[None]:
    """Each test starts and ends with the small disk empty of fillers."""
    disk.empty(small)
    yield
    disk.empty(small)


def _chunked(image_id: str, server: Server, data: bytes) -> tuple[int, bytes]:
    body = (
        b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + data
        + b"\r\n--zz--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=zz", "Transfer-Encoding": "chunked"}
    chunks = [f"{len(body):x}\r\n".encode(), body, b"\r\n0\r\n\r\n"]
    return raw_post(server, f"/original/{image_id}", headers, chunks)


def _storage_full(response: requests.Response, detail: str) -> None:
    assert_problem(response, 507, detail, "storage-full")
    assert response.headers["Retry-After"] == "60"


def _storage_failed(response: requests.Response) -> None:
    assert_problem(response, 503, "Read-only file system|not writable", "storage-failed")
    assert response.headers["Retry-After"] == "30"


def _health(server: Server) -> requests.Response:
    return requests.get(server.url("/health"), timeout=10)


# -- uploads -----------------------------------------------------------------------------------------


def test_upload_declared_past_the_reserve_is_507_and_stores_nothing(
    server: Server, small: Path, image_id: str
) -> None:
    disk.fill(small, leave=RESERVE + 256 * 1024)
    _storage_full(upload(server, image_id, SMALL), "no room for this upload")
    assert server.leaves_nothing(image_id)


def test_upload_that_keeps_the_reserve_is_stored(server: Server, small: Path, image_id: str) -> None:
    disk.fill(small, leave=RESERVE + MIB)
    assert upload(server, image_id, SMALL).status_code == 201


def test_chunked_upload_crossing_the_reserve_is_507_and_stores_nothing(
    server: Server, small: Path, image_id: str
) -> None:
    disk.fill(small, leave=RESERVE + 256 * 1024)
    status, body = _chunked(image_id, server, SMALL)
    assert status == 507, body
    assert b"urn:pymager:problem:storage-full" in body
    assert server.leaves_nothing(image_id)


def test_upload_over_max_upload_bytes_is_413_on_a_full_disk(
    server: Server, small: Path, image_id: str
) -> None:
    too_large = SMALL + b"\0" * (MAX_UPLOAD_BYTES + 1 - len(SMALL))
    disk.fill(small)
    status, body = _chunked(image_id, server, too_large)
    assert status == 413, body
    assert_problem(upload(server, image_id, too_large), 413, "max_upload_bytes")
    assert server.leaves_nothing(image_id)


def test_upload_spooled_to_a_full_temporary_directory_is_507(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_id: str
) -> None:
    """CherryPy spools the multipart part to the system temporary directory before pymager reads it."""
    with disk.small_filesystem(tmp_path / "spool", MIB) as spool:
        # Room for the probe file Python writes to pick a temporary directory, none for the upload.
        disk.fill(spool, leave=64 * 1024)
        monkeypatch.setenv("TMPDIR", str(spool))
        spooling = start_server(tmp_path / "server", sqlite_url(tmp_path / "registry.sqlite3"))
        try:
            _storage_full(upload(spooling, image_id, SMALL), "receiving the upload")
            assert spooling.leaves_nothing(image_id)
            disk.empty(spool)
            assert upload(spooling, image_id, SMALL).status_code == 201
        finally:
            stop_and_check_log(spooling)


# -- generation --------------------------------------------------------------------------------------


def test_derived_miss_below_the_generation_reserve_is_507_and_made_once_space_is_freed(
    server: Server, small: Path, image_id: str
) -> None:
    assert upload(server, image_id, SMALL).status_code == 201
    thumb = requests.get(server.url(f"/derived/{image_id}-40x40.png"), timeout=30)
    assert thumb.status_code == 200
    disk.fill(small, leave=512 * 1024)

    big = server.url(f"/derived/{image_id}-400x400.png")
    _storage_full(requests.get(big, timeout=30), f"no room for generating {image_id}-400x400")
    assert not server.temporary_files()
    assert server.rows(image_id) == (1, 1)  # the thumbnail's: no claim left for the miss
    hit = requests.get(server.url(f"/derived/{image_id}-40x40.png"), timeout=30)
    assert (hit.status_code, hit.content) == (200, thumb.content)  # hits are served

    disk.empty(small)
    assert requests.get(big, timeout=30).status_code == 200
    assert server.rows(image_id) == (1, 2)


def test_derived_miss_that_fills_the_disk_is_507_and_leaves_no_temporary_file(
    server: Server, small: Path, image_id: str
) -> None:
    assert upload(server, image_id, LARGE).status_code == 201
    disk.fill(small, leave=MIB + 256 * 1024)  # above the generation reserve, below the image's size

    url = server.url(f"/derived/{image_id}-700x700.png")
    for _ in range(3):  # the issue: six failed generations left six temporary files
        _storage_full(requests.get(url, timeout=30), "No space left on device")
        assert not server.temporary_files()
        assert server.rows(image_id) == (1, 0)
        assert server.files_of(image_id) == [server.data_directory / "originals" / image_id]

    disk.empty(small)
    made = requests.get(url, timeout=30)
    assert made.status_code == 200
    assert len(made.content) > MIB


# -- delete and health -------------------------------------------------------------------------------


def test_delete_on_a_full_disk_is_204_and_frees_space(server: Server, small: Path, image_id: str) -> None:
    assert upload(server, image_id, SMALL).status_code == 201
    assert requests.get(server.url(f"/derived/{image_id}-40x40.png"), timeout=30).status_code == 200
    disk.fill(small)
    before = disk.free_bytes(small)

    assert requests.delete(server.url(f"/original/{image_id}"), timeout=30).status_code == 204

    assert server.leaves_nothing(image_id)
    assert disk.free_bytes(small) > before + len(SMALL) // 2


def test_health_says_full_below_the_reserve_and_still_answers_200(server: Server, small: Path) -> None:
    disk.fill(small, leave=RESERVE // 2)
    response = _health(server)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "registry": "ok", "storage": "full"}
    disk.empty(small)
    assert _health(server).json() == {"status": "ok", "registry": "ok", "storage": "ok"}


# -- a read-only disk --------------------------------------------------------------------------------


def test_a_read_only_data_directory_is_503_for_writes_and_serves_hits(
    server: Server, small: Path, image_id: str
) -> None:
    assert upload(server, image_id, SMALL).status_code == 201
    thumb = requests.get(server.url(f"/derived/{image_id}-40x40.png"), timeout=30)
    other = f"{image_id}-other"

    with disk.read_only(small):
        _storage_failed(_health(server))
        _storage_failed(upload(server, other, SMALL))
        _storage_failed(requests.get(server.url(f"/derived/{image_id}-400x400.png"), timeout=30))
        _storage_failed(requests.delete(server.url(f"/original/{image_id}"), timeout=30))
        hit = requests.get(server.url(f"/derived/{image_id}-40x40.png"), timeout=30)
        assert (hit.status_code, hit.content) == (200, thumb.content)
        assert requests.get(server.url(f"/original/{image_id}"), timeout=30).content == SMALL

    assert _health(server).status_code == 200
    assert server.leaves_nothing(other)
    assert server.rows(image_id) == (1, 1)
    assert requests.get(server.url(f"/derived/{image_id}-400x400.png"), timeout=30).status_code == 200
    assert requests.delete(server.url(f"/original/{image_id}"), timeout=30).status_code == 204
    assert server.leaves_nothing(image_id)
