"""Slow and greedy clients: a stalled upload is cut off after ``socket_timeout`` while other requests
are served, and the server's memory does not grow with the size of what it is sent."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import Server, start_server

SOCKET_TIMEOUT = 1.0
CUT_OFF_DEADLINE = 10 * SOCKET_TIMEOUT  # generous: a loaded CI machine, never a fixed sleep
BIG_UPLOAD = 40 * 1024 * 1024
MAX_UPLOAD = 48 * 1024 * 1024
# Peak resident memory may grow by this much while 40 MiB bodies go through (buffering one would not fit).
MEMORY_SLACK = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("server-impatient")
    running = start_server(
        directory,
        sqlite_url(directory / "registry.sqlite3"),
        max_upload_bytes=MAX_UPLOAD,
        **{"server.socket_timeout": SOCKET_TIMEOUT},
    )
    yield running
    running.stop()
    log = running.log_path.read_text()
    assert "Traceback" not in log, log


def _connect(server: Server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=CUT_OFF_DEADLINE)


def _wait_for_close(connection: socket.socket) -> tuple[bytes, float]:
    """Read until the server closes the connection; return what it sent and how long it took."""
    started = time.monotonic()
    received = b""
    while True:
        try:
            chunk = connection.recv(4096)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


STALLS = {
    "in-the-headers": b"POST /original/{id} HTTP/1.1\r\nHost: pymager\r\nContent-Type: multi",
    "in-the-body": (
        b"POST /original/{id} HTTP/1.1\r\nHost: pymager\r\n"
        b"Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 100000\r\n\r\n"
        b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n\xff\xd8\xff'
    ),
}


@pytest.mark.parametrize("where", sorted(STALLS))
def test_stalled_upload_is_cut_off_while_others_are_served(impatient: Server, where: str) -> None:
    image_id = f"slow-{uuid.uuid4().hex[:12]}"
    with _connect(impatient) as stalled:
        stalled.sendall(STALLS[where].replace(b"{id}", image_id.encode()))
        other = requests.post(
            impatient.url(f"/original/{image_id}-other"), files={"file": ("a", images.jpeg())}, timeout=10
        )
        assert other.status_code == 201
        assert requests.get(impatient.url("/health"), timeout=10).status_code == 200
        received, waited = _wait_for_close(stalled)
    assert waited < CUT_OFF_DEADLINE
    assert not received or received.startswith(b"HTTP/1.1 408")  # closed, or told why first
    assert impatient.leaves_nothing(image_id)


# Requests answered before their body is read: a duplicate id (409), an invalid id (400), a route that
# takes no body (405), and a hit on /derived sent with a body (read and dropped).
EARLY_ANSWERS = {
    "duplicate-id": "POST /original/{id}",
    "invalid-id": "POST /original/bad.id",
    "read-only-route": "POST /derived/{id}-10x10.jpg",
    "hit-with-a-body": "GET /derived/{id}-10x10.jpg",
    "delete-with-a-body": "DELETE /original/{id}",  # read before deleting: nothing is deleted
}


@pytest.mark.parametrize("request_line", EARLY_ANSWERS.values(), ids=list(EARLY_ANSWERS))
def test_a_body_stalled_after_an_early_answer_is_cut_off_with_408(
    impatient: Server, request_line: str
) -> None:
    """The unread body is drained before the answer is sent (so the connection can be reused); a
    client that stops sending it is cut off like a stalled upload, never left without an answer
    while the server logs a traceback."""
    image_id = f"early-{uuid.uuid4().hex[:12]}"
    stored = requests.post(
        impatient.url(f"/original/{image_id}"), files={"file": ("a", images.jpeg())}, timeout=10
    )
    assert stored.status_code == 201
    assert requests.get(impatient.url(f"/derived/{image_id}-10x10.jpg"), timeout=30).status_code == 200
    head = f"{request_line.format(id=image_id)} HTTP/1.1\r\nHost: pymager\r\n"
    with _connect(impatient) as stalled:
        stalled.sendall(head.encode() + b"Content-Length: 100000\r\n\r\n" + b"x" * 1000)
        received, waited = _wait_for_close(stalled)
    assert waited < CUT_OFF_DEADLINE
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert "Traceback" not in impatient.log_path.read_text()
    assert impatient.rows(image_id) == (1, 1)


def _peak_memory(server: Server) -> int:
    """The server process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def _big_body() -> bytes:
    """A valid 40 MiB JPEG: a small picture followed by padding (decoders stop at EOI)."""
    return images.jpeg(64, 48) + b"\0" * BIG_UPLOAD


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_does_not_grow_with_upload_size(impatient: Server) -> None:
    """Accepted, refused-early (409, invalid id) and oversized bodies all stream: peak RSS stays flat."""
    image_id = f"big-{uuid.uuid4().hex[:12]}"
    warm_up = requests.post(
        impatient.url(f"/original/{image_id}-warm"), files={"file": ("a", images.jpeg())}, timeout=10
    )
    assert warm_up.status_code == 201
    derived_url = impatient.url(f"/derived/{image_id}-warm-10x10.jpg")
    assert requests.get(derived_url, timeout=30).status_code == 200  # generated before measuring
    body = _big_body()
    before = _peak_memory(impatient)
    created = requests.post(impatient.url(f"/original/{image_id}"), files={"file": ("a", body)}, timeout=120)
    assert created.status_code == 201, created.text
    duplicate = requests.post(
        impatient.url(f"/original/{image_id}"), files={"file": ("a", body)}, timeout=120
    )
    assert duplicate.status_code == 409
    invalid = requests.post(impatient.url("/original/bad.id"), files={"file": ("a", body)}, timeout=120)
    assert invalid.status_code == 400
    # A body nobody reads, on a route that never reads one, is dropped in blocks, not buffered whole.
    derived = requests.get(derived_url, data=body, timeout=120)
    assert derived.status_code == 200
    growth = _peak_memory(impatient) - before
    assert growth < MEMORY_SLACK, f"peak RSS grew by {growth / 2**20:.1f} MiB for 40 MiB bodies"
    assert requests.delete(impatient.url(f"/original/{image_id}"), timeout=10).status_code == 204
    assert impatient.leaves_nothing(image_id)


HUGE_BODY_TARGETS = [
    ("/original/bad.id", "Host: pymager\r\n"),
    ("/original/anything", "Host: pymager\r\n"),
    ("/derived/x-1x1.jpg", "Host: pymager\r\n"),
    ("/nowhere", "Host: pymager\r\n"),
    ("/original/anything", ""),  # no Host: CherryPy refuses the request before pymager's checks run
]


@pytest.mark.parametrize("method", ["POST", "GET", "HEAD"])
def test_huge_declared_length_is_refused_at_once_without_allocating(impatient: Server, method: str) -> None:
    before = _peak_memory(impatient)
    for path, host in HUGE_BODY_TARGETS:
        with _connect(impatient) as connection:
            connection.sendall(
                f"{method} {path} HTTP/1.1\r\n{host}"
                f"Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: {10**12}\r\n\r\n".encode()
            )
            received, waited = _wait_for_close(connection)
        assert received.startswith(b"HTTP/1.1 413"), received[:200]
        assert waited < SOCKET_TIMEOUT
        head, _, body = received.partition(b"\r\n\r\n")
        if method != "HEAD":  # the length of the problem actually sent, not of an earlier answer
            assert f"Content-Length: {len(body)}\r\n".encode() in head + b"\r\n", received
    assert _peak_memory(impatient) - before < MEMORY_SLACK
    assert requests.get(impatient.url("/health"), timeout=10).status_code == 200
