"""A real server keeps reduced copies beside each original: made by the upload, used by a derived image
the smallest copy is enough for, and gone with the original's DELETE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests import images
from tests.functional.conftest import Server, sqlite_url, start_server, stop_and_check_log, upload


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("reduced")
    running = start_server(directory, sqlite_url(directory / "registry.sqlite3"), reduced_copies="300, 80")
    yield running
    stop_and_check_log(running)


def test_an_upload_stores_its_copies_and_a_delete_removes_them(server: Server) -> None:
    upload(server, "reduced", images.jpeg(600, 400))
    copies = server.data_directory / "reduced" / "reduced"
    assert sorted(path.name for path in copies.iterdir()) == ["300", "80"]
    with Image.open(copies / "80") as copy:
        assert (copy.format, copy.size) == ("JPEG", (80, 53))
    answer = requests.get(server.url("/derived/reduced-20x20.png"), timeout=30)
    assert answer.status_code == 200
    response = requests.delete(server.url("/original/reduced"), auth=server.auth, timeout=10)
    assert response.status_code == 204
    assert not Path(copies).exists()
    assert server.leaves_nothing("reduced")
