"""A flood of distinct cold requests on a real server: beyond ``max_waiting_generations`` they are
refused at once (503 + Retry-After) instead of holding the server's threads, so cache hits and /health
are answered while it runs, and nothing is left behind."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import Server, all_at_once, assert_problem, start_server, stop_and_check_log

FLOOD = 20
CAP = 2


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Room for two cold requests, one generation at a time; threads for the whole flood and more, so
    that only the cap can refuse."""
    directory = tmp_path_factory.mktemp("server-capped")
    running = start_server(
        directory,
        sqlite_url(directory / "registry.sqlite3"),
        max_waiting_generations=CAP,
        max_concurrent_generations=1,
        **{"server.thread_pool": FLOOD + 8},
    )
    yield running
    stop_and_check_log(running)


def test_hits_and_health_are_answered_while_a_cold_flood_is_refused_beyond_the_cap(capped: Server) -> None:
    image_id = f"flood-{uuid.uuid4().hex[:12]}"
    stored = requests.post(
        capped.url(f"/original/{image_id}"), files={"file": ("a.png", images.png(2000, 2000))}, timeout=60
    )
    assert stored.status_code == 201, stored.text
    hit = capped.url(f"/derived/{image_id}-100x100.jpg")
    assert requests.get(hit, timeout=60).status_code == 200  # generated: a hit from now on
    # Each a PNG of about 1600 × 1600 (a pad around the whole picture): long to encode.
    cold = [capped.url(f"/derived/{image_id}-{1600 + index}x1600-pad.png") for index in range(FLOOD)]

    flooding = threading.Event()
    flooding.set()
    answered_meanwhile: list[tuple[str, int]] = []

    def hits_and_health() -> None:
        while flooding.is_set():
            for url in (hit, capped.url("/health")):
                status = requests.get(url, timeout=60).status_code
                if flooding.is_set():
                    answered_meanwhile.append((url, status))

    watcher = threading.Thread(target=hits_and_health)
    watcher.start()
    try:
        flood = all_at_once(FLOOD, lambda index: requests.get(cold[index], timeout=120))
    finally:
        flooding.clear()
        watcher.join()

    refused = [response for response in flood if response.status_code == 503]
    assert {response.status_code for response in flood} <= {200, 503}
    assert refused, "no cold request was refused: the flood never reached the cap"
    for response in refused:
        assert_problem(response, 503, "cold requests are in progress", "service-unavailable")
        assert int(response.headers["Retry-After"]) >= 1
    assert answered_meanwhile, "nothing else was answered while the flood ran"
    assert {status for _, status in answered_meanwhile} == {200}
    assert {url for url, _ in answered_meanwhile} == {hit, capped.url("/health")}

    # Refused requests left nothing: asked again once the flood is over, each is generated once.
    for response in refused:
        assert requests.get(response.url, timeout=120).status_code == 200
    assert not capped.temporary_files()
    assert capped.rows(image_id) == (1, 1 + FLOOD)
    checked = capped.run_tool("--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
