"""``[server] processes = 2``: the standalone server as a parent and two workers sharing one socket.
It serves, generates a cold key once however many requests race for it across the workers, sums its
metrics over them, replaces a worker that dies, fails start-up as one process would, and stops on
SIGTERM leaving no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import (
    Server,
    all_at_once,
    free_port,
    log_text,
    run_pymager,
    start_server,
    upload,
    write_config,
)

pytestmark = pytest.mark.multiprocess
DEADLINE = 30.0
GENERATED = "pymager_derived_generated_total"


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling another process's state, bounded by the deadline


def workers_of(server: Server) -> list[int]:
    pid = server.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fetch_all(urls: list[str]) -> list[requests.Response]:
    return all_at_once(len(urls), lambda index: requests.get(urls[index], timeout=60))


def serving_announcements(server: Server) -> int:
    return log_text(server.log_path).count("worker processes serving")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = start_server(tmp_path, sqlite_url(tmp_path / "registry.sqlite3"), **{"server.processes": 2})
    try:
        wait_for(lambda: serving_announcements(started) == 1, "both workers to serve")
        yield started
    finally:
        started.stop()


def test_two_processes_serve_on_one_port(server: Server, image_id: str) -> None:
    assert len(workers_of(server)) == 2
    assert upload(server, image_id, images.jpeg(640, 480)).status_code == 201
    for _ in range(20):  # new connections, taken by either worker
        assert requests.get(server.url(f"/original/{image_id}/info"), timeout=10).status_code == 200


def test_burst_for_one_cold_key_generates_it_once_across_workers(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.jpeg(1200, 900)).status_code == 201
    responses = fetch_all([server.url(f"/derived/{image_id}-321x123.webp")] * 60)
    assert {response.status_code for response in responses} == {200}
    assert len({response.content for response in responses}) == 1
    assert server.metric(GENERATED) == 1
    assert server.rows(image_id) == (1, 1)


def test_metrics_are_summed_over_workers(server: Server, image_id: str) -> None:
    assert upload(server, image_id, images.jpeg(800, 600)).status_code == 201
    generators: set[str] = set()
    keys = 0
    # Connections go to whichever worker accepts first: ask until both have generated (8 at a time).
    while len(generators) < 2:
        assert keys < 200, "one worker generated everything"
        batch = [server.url(f"/derived/{image_id}-{100 + keys + n}x100.jpg") for n in range(8)]
        keys += len(batch)
        assert {r.status_code for r in fetch_all(batch)} == {200}
        generators = set(re.findall(r"\[(\d+)\] pymager\.service: generated", log_text(server.log_path)))
    assert generators <= {str(pid) for pid in workers_of(server)}
    for _ in range(10):  # whichever worker answers reports the sum
        assert server.metric(GENERATED) == keys


def test_a_worker_that_dies_is_replaced(server: Server, image_id: str) -> None:
    victim, survivor = workers_of(server)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in workers_of(server) and len(workers_of(server)) == 2, "a new worker")
    assert survivor in workers_of(server)
    assert f"worker {victim} died (signal SIGKILL); starting another" in log_text(server.log_path)
    (replacement,) = set(workers_of(server)) - {survivor}
    wait_for(lambda: f"worker {replacement} serving" in log_text(server.log_path), "the new worker to serve")
    assert upload(server, image_id, images.jpeg(640, 480)).status_code == 201
    assert requests.get(server.url(f"/derived/{image_id}-64x64.jpg"), timeout=60).status_code == 200


def test_sigterm_stops_every_worker(server: Server) -> None:
    workers = workers_of(server)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=DEADLINE) == 0
    assert not [pid for pid in workers if alive(pid)]
    assert "Traceback" not in log_text(server.log_path)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url("/health"), timeout=5)


def test_a_start_up_failure_of_the_workers_stops_the_server(tmp_path: Path) -> None:
    # Never migrated: every worker refuses it, as one process does (exit status 2, one line).
    config = write_config(
        tmp_path / "pymager.ini",
        tmp_path / "data",
        sqlite_url(tmp_path / "never-migrated.sqlite3"),
        free_port(),
        **{"server.processes": 2},
    )
    result = run_pymager("--config", str(config))
    assert result.returncode == 2, result.stderr
    assert "not migrated" in result.stderr or "migrate" in result.stderr
    assert "ended during start-up" in result.stderr
    leftover = subprocess.run(["pgrep", "-f", str(config)], capture_output=True, text=True, check=False)
    assert leftover.stdout == ""
