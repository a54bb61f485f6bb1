"""``pymager import DIR`` against a real server: ids from paths, skips with the server's reason, id
collisions, conflicts, and a run interrupted by SIGINT then run again, which stores every image exactly
once."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pymager.cli.importer import image_id_for
from pymager.client import Client
from pymager.config import hash_api_key
from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import RUN_TIMEOUT, Server, start_server, stop_and_check_log

KEY = "import-test-key-0123456789"
DEADLINE = 60.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own per test: the registry then holds exactly what the test imported."""
    running = start_server(
        tmp_path / "server", sqlite_url(tmp_path / "registry.sqlite3"), **{"auth.api_keys": hash_api_key(KEY)}
    )
    yield running
    stop_and_check_log(running)


def command(directory: Path, server: Server, *args: str) -> list[str]:
    return [sys.executable, "-m", "pymager.cli", "import", str(directory), "--url", server.base_url, *args]


def environment() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PYMAGER_")}, "PYMAGER_KEY": KEY}


def run_import(directory: Path, server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(directory, server, *args),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def summary(output: str) -> dict[str, int]:
    """The counts of the summary: ``stored``, ``already stored``, ``skipped``, … , ``not done``."""
    return {name: int(count) for name, count in re.findall(r"^  ([a-z ]+?) +(\d+)$", output, re.MULTILINE)}


def stored_ids(server: Server) -> list[str]:
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(text("SELECT id FROM originals ORDER BY id"))]
    finally:
        engine.dispose()


def make_tree(root: Path, count: int, side: int = 64) -> dict[str, bytes]:
    """``count`` distinct JPEGs in nested albums, a text file and a PNG whose id collides with the first
    JPEG's; returns the images that should be stored, by id."""
    expected: dict[str, bytes] = {}
    for index in range(count):
        path = root / f"album {index % 3}" / f"photo {index:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = images.jpeg(side + index, side)
        path.write_bytes(data)
        expected[f"album_{index % 3}-photo_{index:03d}"] = data
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a picture\n", encoding="utf-8")
    (root / "album 0" / "photo_000.png").write_bytes(images.png(10, 10))  # same id as "photo 000.jpg"
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.jpg").write_bytes(images.jpeg(8, 8))
    return expected


@pytest.mark.parametrize(
    ("relative", "image_id"),
    [
        ("photo.jpg", "photo"),
        ("2024/summer/beach 01.JPG", "2024-summer-beach_01"),
        ("été/café.png", "_t_-caf_"),
        ("archive.tar.gz", "archive_tar"),
        ("README", "README"),
        ("a-b_c/d.e.f.webp", "a-b_c-d_e_f"),
    ],
)
def test_import_id_for_a_path(relative: str, image_id: str) -> None:
    assert image_id_for(PurePosixPath(relative)) == image_id


def test_import_id_refuses_past_128_characters() -> None:
    assert len(image_id_for(PurePosixPath("a" * 128 + ".jpg"))) == 128
    with pytest.raises(ValueError, match="129 characters"):
        image_id_for(PurePosixPath("a" * 129 + ".jpg"))


def test_import_stores_a_tree_and_lists_what_it_skipped(server: Server, tmp_path: Path) -> None:
    expected = make_tree(tmp_path / "tree", 5)
    (tmp_path / "tree" / ("x" * 130 + ".jpg")).write_bytes(images.jpeg(8, 8))

    result = run_import(tmp_path / "tree", server, "--jobs", "3")

    assert result.returncode == 0, result.stdout + result.stderr
    counts = summary(result.stdout)
    assert counts == {
        "stored": 5,
        "already stored": 0,
        "skipped": 3,
        "conflict": 0,
        "failed": 0,
        "not done": 0,
    }, result.stdout
    assert "pymager import: 8 file(s)" in result.stdout
    assert re.search(r"skipped: notes/readme.txt \(id notes-readme\): unsupported-image: .+", result.stdout)
    assert "skipped: album 0/photo_000.png (id album_0-photo_000): id collision: album 0/photo 000.jpg" in (
        result.stdout
    )
    assert "over 128" in result.stdout
    assert "secret" not in result.stdout
    assert stored_ids(server) == sorted(expected)
    with Client(server.base_url) as client:
        for image_id, data in expected.items():
            assert client.download(image_id) == data


def test_import_strict_fails_on_skipped_files(server: Server, tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 2)

    result = run_import(tmp_path / "tree", server, "--strict")

    assert result.returncode == 1
    assert summary(result.stdout)["stored"] == 2


def test_import_reports_other_content_under_an_id_as_a_conflict(server: Server, tmp_path: Path) -> None:
    expected = make_tree(tmp_path / "tree", 3)
    taken = sorted(expected)[1]
    with Client(server.base_url, key=KEY) as client:
        client.upload(taken, io.BytesIO(images.png(12, 12)))

    result = run_import(tmp_path / "tree", server)

    assert result.returncode == 1
    counts = summary(result.stdout)
    assert (counts["stored"], counts["conflict"]) == (2, 1), result.stdout
    assert f"(id {taken}): stored with other content" in result.stdout


def test_import_without_a_valid_key_stops_and_fails(server: Server, tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 3)
    environ = {**environment(), "PYMAGER_KEY": "wrong"}

    result = subprocess.run(
        command(tmp_path / "tree", server), env=environ, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )

    assert result.returncode == 1
    assert "stopped: the server refused the key" in result.stdout
    assert stored_ids(server) == []


def test_import_interrupted_then_run_again_stores_every_image_once(server: Server, tmp_path: Path) -> None:
    count = 80
    expected = make_tree(tmp_path / "tree", count, side=900)
    process = subprocess.Popen(
        command(tmp_path / "tree", server, "--jobs", "2"),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Interrupted once a few images are stored: polled, with a deadline.
        deadline = time.monotonic() + DEADLINE
        while len(stored_ids(server)) < 5:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the import stored nothing in time"
            time.sleep(0.05)  # polling another process's progress, bounded by the deadline
        process.send_signal(signal.SIGINT)
        first_out, first_err = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    first = summary(first_out)
    stored_first = stored_ids(server)

    second = run_import(tmp_path / "tree", server, "--jobs", "2")

    assert process.returncode == 130, first_out + first_err
    assert "interrupted: run the same command again" in first_out
    assert "Traceback" not in first_err
    assert 5 <= first["stored"] < count, "the first run was not interrupted mid-way: make the tree slower"
    assert first["stored"] == len(stored_first)  # every upload in flight was waited for and counted
    assert first["not done"] == count + 2 - sum(v for k, v in first.items() if k != "not done")
    assert second.returncode == 0, second.stdout + second.stderr
    counts = summary(second.stdout)
    assert counts["already stored"] == len(stored_first)
    assert counts["stored"] == count - len(stored_first)
    assert (counts["skipped"], counts["failed"], counts["conflict"], counts["not done"]) == (2, 0, 0, 0)
    assert stored_ids(server) == sorted(expected)  # each exactly once (the id is the primary key)
    with Client(server.base_url) as client:
        for image_id in sorted(expected)[-3:]:
            assert client.sha256(image_id) == hashlib.sha256(expected[image_id]).hexdigest()
