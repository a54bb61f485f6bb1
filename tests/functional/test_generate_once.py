"""Each derived image is generated exactly once: across threads, across server processes sharing a
registry and a data directory, and after a crash. No crash leaves a torn file or a lying row."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests import images
from tests.conftest import DATABASES, sqlite_url
from tests.functional.conftest import Server, all_at_once, start_server, upload

CRASH_DEADLINE = 30.0


def fetch_all(urls: list[str]) -> list[requests.Response]:
    """GET every url at once (one thread each, released together)."""
    return all_at_once(len(urls), lambda index: requests.get(urls[index], timeout=120))


def generated(servers: list[Server]) -> float:
    return sum(server.metric("pymager_derived_generated_total") for server in servers)


def slow_png() -> bytes:
    """A valid 36-megapixel PNG that compresses to little but takes a while to decode and resize."""
    picture = Image.linear_gradient("L").resize((6000, 6000)).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CRASH_DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)  # polling the filesystem for a moment to strike, bounded by the deadline


def test_100_concurrent_requests_in_one_process_generate_once(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.jpeg(1200, 900)).status_code == 201
    before = generated([server])
    responses = fetch_all([server.url(f"/derived/{image_id}-321x123.webp")] * 100)
    assert {response.status_code for response in responses} == {200}
    assert len({response.content for response in responses}) == 1
    assert generated([server]) - before == 1
    assert server.rows(image_id) == (1, 1)


@pytest.fixture(params=DATABASES)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Server]]:
    """Two server processes sharing one registry and one data directory."""
    if request.param == "postgres":
        database_url: str = request.getfixturevalue("make_postgres_database")()
    else:
        database_url = sqlite_url(tmp_path / "shared.sqlite3")
    shared = tmp_path / "shared-data"
    servers = [start_server(tmp_path / f"server{n}", database_url, shared) for n in range(2)]
    yield servers
    for server in servers:
        server.stop()
    for server in servers:
        assert "Traceback" not in server.log_path.read_text()


@pytest.mark.multiprocess
def test_requests_spread_over_processes_generate_each_key_once(cluster: list[Server]) -> None:
    assert upload(cluster[0], "shared", images.jpeg(1600, 1200)).status_code == 201
    keys = ["shared-200x200.jpg", "shared-640x480.png", "shared-99x301.webp"]
    for key in keys:
        urls = [cluster[n % 2].url(f"/derived/{key}") for n in range(120)]
        before = generated(cluster)
        responses = fetch_all(urls)
        assert {response.status_code for response in responses} == {200}, key
        assert len({response.content for response in responses}) == 1, key
        assert generated(cluster) - before == 1, key
    assert cluster[0].rows("shared") == (1, 3)


@pytest.mark.multiprocess
def test_uploads_of_one_id_spread_over_processes_create_exactly_one(cluster: list[Server]) -> None:
    pictures = [images.jpeg(30 + n, 30) for n in range(40)]
    statuses = all_at_once(40, lambda n: upload(cluster[n % 2], "contested", pictures[n]).status_code)
    assert sorted(statuses) == [201] + [409] * 39
    stored = requests.get(cluster[1].url("/original/contested"), timeout=10)
    assert stored.status_code == 200
    with Image.open(io.BytesIO(stored.content)) as picture:
        assert picture.height == 30


def _temporaries(directory: Path) -> list[Path]:
    return [path for path in directory.glob(".tmp-*")] if directory.is_dir() else []


def _kill_once_staged(server: Server, request: Callable[[], None], staged_in: Path, what: str) -> None:
    """Send ``request`` from a thread, SIGKILL the server as soon as a temporary file appears in
    ``staged_in`` (the work is under way), and wait for the process and the request to end."""
    thread = threading.Thread(target=request)
    thread.start()
    wait_for(lambda: bool(_temporaries(staged_in)), what)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    thread.join()


@pytest.mark.multiprocess
def test_kill_during_generation_leaves_no_torn_file_and_is_repaired(tmp_path: Path) -> None:
    server = start_server(tmp_path / "a", sqlite_url(tmp_path / "r.sqlite3"), tmp_path / "data")
    try:
        assert upload(server, "big", slow_png()).status_code == 201
        derived_dir = server.data_directory / "derived" / "big"
        url = server.url("/derived/big-1000x1000.png")
        _kill_once_staged(server, lambda: _swallow(url), derived_dir, "the generation to start")
    finally:
        server.stop()

    assert not (derived_dir / "1000x1000.png").exists(), "a torn derived file was published"
    check = server.run_tool("--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "stale claim by" in check.stdout
    assert "temporary file" in check.stdout
    repair = server.run_tool("--repair")
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert not _temporaries(derived_dir)
    clean = server.run_tool("--check")
    assert clean.returncode == 0, clean.stdout
    assert "0 problem(s)" in clean.stdout

    restarted = start_server(tmp_path / "b", server.database_url, server.data_directory)
    try:
        response = requests.get(restarted.url("/derived/big-1000x1000.png"), timeout=120)
        assert response.status_code == 200
        with Image.open(io.BytesIO(response.content)) as picture:
            picture.load()  # a torn file would fail to decode
            assert picture.size == (1000, 1000)
        assert restarted.metric("pymager_derived_generated_total") == 1
    finally:
        restarted.stop()


@pytest.mark.multiprocess
def test_a_restarted_server_takes_over_the_claim_of_a_killed_one_at_once(tmp_path: Path) -> None:
    config = {"generation_timeout": 3600, "wait_timeout": 60}
    database_url = sqlite_url(tmp_path / "r.sqlite3")
    server = start_server(tmp_path / "a", database_url, tmp_path / "data", **config)
    try:
        assert upload(server, "big", slow_png()).status_code == 201
        url = server.url("/derived/big-700x700.jpg")
        _kill_once_staged(
            server, lambda: _swallow(url), server.data_directory / "derived" / "big", "the generation"
        )
    finally:
        server.stop()
    restarted = start_server(tmp_path / "b", database_url, server.data_directory, **config)
    try:
        # The claim is far from stale by age (generation_timeout is an hour), but its owner is dead.
        response = requests.get(restarted.url("/derived/big-700x700.jpg"), timeout=120)
        assert response.status_code == 200
        assert restarted.metric("pymager_derived_generated_total") == 1
    finally:
        restarted.stop()


@pytest.mark.multiprocess
def test_kill_during_upload_leaves_no_row_or_file_and_is_repaired(tmp_path: Path) -> None:
    server = start_server(tmp_path / "a", sqlite_url(tmp_path / "r.sqlite3"), tmp_path / "data")
    originals = server.data_directory / "originals"
    try:
        data = slow_png()
        _kill_once_staged(
            server, lambda: _swallow_post(server, "uploading", data), originals, "the upload to be staged"
        )
    finally:
        server.stop()
    assert server.rows("uploading") == (0, 0)
    assert not (originals / "uploading").exists()
    check = server.run_tool("--check")
    assert check.returncode == 1
    assert "temporary file" in check.stdout
    assert server.run_tool("--repair").returncode == 0
    assert not _temporaries(originals)
    restarted = start_server(tmp_path / "b", server.database_url, server.data_directory)
    try:
        assert requests.get(restarted.url("/original/uploading"), timeout=10).status_code == 404
        assert upload(restarted, "uploading", images.jpeg()).status_code == 201
    finally:
        restarted.stop()


@pytest.mark.postgres
def test_registry_outage_answers_503_and_recovers(
    tmp_path: Path, make_postgres_database: Callable[[], str], postgres_admin_url: str
) -> None:
    database_url = make_postgres_database()
    name = database_url.rsplit("/", 1)[1]
    server = start_server(tmp_path, database_url)
    admin = create_engine(postgres_admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        assert upload(server, "kept", images.jpeg()).status_code == 201
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )
        for path in ("/original/kept", "/health", "/derived/kept-10x10.png"):
            response = requests.get(server.url(path), timeout=30)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) > 0
        assert server.process.poll() is None
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        assert requests.get(server.url("/original/kept"), timeout=30).status_code == 200
        assert requests.get(server.url("/health"), timeout=30).status_code == 200
        assert requests.get(server.url("/derived/kept-10x10.png"), timeout=30).status_code == 200
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
        server.stop()
    assert "Traceback" not in server.log_path.read_text()


def _swallow(url: str) -> None:
    """GET that the server is killed during: the connection breaks, which is the point."""
    with contextlib.suppress(requests.ConnectionError):
        requests.get(url, timeout=120)


def _swallow_post(server: Server, image_id: str, data: bytes) -> None:
    with contextlib.suppress(requests.ConnectionError):
        upload(server, image_id, data)
