"""Slow clients (slowloris): one that sends its headers or its body too slowly holds a worker for a
bounded time, and behind the shipped Apache site 200 of them at once leave normal requests answered.

The standalone server enforces request deadlines itself (``header_timeout``, ``min_body_rate``:
``pymager/web/deadlines.py``); Apache enforces them with mod_reqtimeout and has the threads for 200
slow connections (``deploy/apache/pymager.conf.in``)."""

from __future__ import annotations

import http.client
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import Server, start_server, stop_and_check_log
from tests.functional.slowloris import SlowClients

HEADER_TIMEOUT = 1.0
MIN_BODY_RATE = 1000
# socket_timeout alone never cuts off these clients: they send something more often than this.
SOCKET_TIMEOUT = 5.0
TRICKLE = 0.2  # seconds between a slow client's sends
# Generous bounds for a loaded machine; a client that is not cut off by then never is.
GIVE_UP = 30.0
SLOW_CONNECTIONS = 200
# Under Apache's header timeout (20 s): a normal request answered within this did not wait for a slow
# connection to be cut off to get a thread.
NORMAL_REQUEST_DEADLINE = 10.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A standalone server with short request deadlines."""
    directory = tmp_path_factory.mktemp("server-deadlines")
    running = start_server(
        directory,
        sqlite_url(directory / "registry.sqlite3"),
        **{
            "server.socket_timeout": SOCKET_TIMEOUT,
            "server.header_timeout": HEADER_TIMEOUT,
            "server.min_body_rate": MIN_BODY_RATE,
        },
    )
    yield running
    stop_and_check_log(running)


def _port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def _trickle_until_closed(connection: socket.socket, head: bytes, chunks: Iterator[bytes]) -> bytes:
    """Send ``head``, then one chunk every ``TRICKLE`` seconds (a slow client's pace) until the server
    answers or closes; return what it sent. Fails if it has done neither after ``GIVE_UP`` seconds."""
    connection.sendall(head)
    connection.settimeout(TRICKLE)
    ends = time.monotonic() + GIVE_UP
    received = b""
    while time.monotonic() < ends:
        try:
            chunk = connection.recv(4096)
        except TimeoutError:  # nothing yet: the slow client sends its next bit
            try:
                connection.sendall(next(chunks))
            except (BrokenPipeError, ConnectionResetError):
                continue  # closed meanwhile: read what it said
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept a slow client for {GIVE_UP} s")


def _header_lines() -> Iterator[bytes]:
    number = 0
    while True:
        number += 1
        yield f"X-Slow-{number}: x\r\n".encode()


def test_standalone_cuts_off_a_client_that_sends_its_headers_too_slowly(strict: Server) -> None:
    with socket.create_connection(("127.0.0.1", _port(strict))) as connection:
        received = _trickle_until_closed(
            connection, b"GET /health HTTP/1.1\r\nHost: pymager\r\n", _header_lines()
        )
    assert not received or received.startswith(b"HTTP/1.1 408"), received[:200]
    assert requests.get(strict.url("/health"), timeout=10).status_code == 200


def _upload_head(image_id: str, length: int) -> bytes:
    return (
        f"POST /original/{image_id} HTTP/1.1\r\nHost: pymager\r\n"
        f"Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _multipart(data: bytes) -> bytes:
    return (
        b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + data + b"\r\n--zz--\r\n"
    )


def test_standalone_cuts_off_a_body_sent_below_min_body_rate(strict: Server) -> None:
    image_id = f"slow-{uuid.uuid4().hex[:12]}"
    body = _multipart(images.jpeg(64, 48) + b"\0" * 100_000)
    per_send = int(MIN_BODY_RATE * TRICKLE / 4)  # a quarter of the rate
    chunks = iter([body[start : start + per_send] for start in range(0, len(body), per_send)])
    with socket.create_connection(("127.0.0.1", _port(strict))) as connection:
        received = _trickle_until_closed(connection, _upload_head(image_id, len(body)), chunks)
    assert not received or received.startswith(b"HTTP/1.1 408"), received[:200]
    assert strict.leaves_nothing(image_id)


def test_standalone_accepts_a_body_sent_above_min_body_rate_for_longer_than_header_timeout(
    strict: Server,
) -> None:
    """The body's deadline grows with what it received: only a fixed deadline would cut this one."""
    image_id = f"steady-{uuid.uuid4().hex[:12]}"
    per_send = int(MIN_BODY_RATE * TRICKLE * 2)  # twice the rate
    sends = 2 + int(HEADER_TIMEOUT / TRICKLE)  # so that it lasts longer than header_timeout
    body = _multipart(images.jpeg(64, 48) + b"\0" * (per_send * sends))  # decoders stop at EOI
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", _port(strict))) as connection:
        connection.sendall(_upload_head(image_id, len(body)))
        for start in range(0, len(body), per_send):
            connection.sendall(body[start : start + per_send])
            time.sleep(TRICKLE)  # the client's pace, the subject of this test
        connection.settimeout(GIVE_UP)
        answer = connection.recv(4096)
    assert time.monotonic() - started > HEADER_TIMEOUT
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert requests.delete(strict.url(f"/original/{image_id}"), timeout=10).status_code == 204


def test_standalone_gives_each_request_of_a_connection_its_own_header_deadline(strict: Server) -> None:
    """Idle time between two requests on a kept-alive connection counts against neither."""
    connection = http.client.HTTPConnection("127.0.0.1", _port(strict), timeout=GIVE_UP)
    try:
        for _ in range(2):
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close
            time.sleep(HEADER_TIMEOUT * 1.5)  # idle between requests, longer than header_timeout
    finally:
        connection.close()


@pytest.mark.apache
def test_apache_answers_a_normal_request_while_200_slow_connections_are_open(apache_server: Server) -> None:
    """The shipped site has threads for 200 slow connections and more: a normal request is answered
    while they are all open, without waiting for mod_reqtimeout to cut one off (it answers within
    ``NORMAL_REQUEST_DEADLINE``, shorter than the 20 s header timeout). Then mod_reqtimeout cuts
    every one of them off (its longest header timeout is 40 s)."""
    image_id = f"slowloris-{uuid.uuid4().hex[:12]}"
    stored = requests.post(
        apache_server.url(f"/original/{image_id}"),
        files={"file": ("a.jpg", images.jpeg())},
        auth=apache_server.auth,
        timeout=60,
    )
    assert stored.status_code == 201, stored.text
    hit = apache_server.url(f"/derived/{image_id}-10x10.jpg")
    assert requests.get(hit, timeout=60).status_code == 200  # generated: Apache serves it from now on
    with SlowClients(_port(apache_server), SLOW_CONNECTIONS, interval=2.0, limit=90) as slow:
        assert len(slow.still_open()) == SLOW_CONNECTIONS
        assert requests.get(hit, timeout=NORMAL_REQUEST_DEADLINE).status_code == 200
        health = requests.get(apache_server.url("/health"), timeout=NORMAL_REQUEST_DEADLINE)
        assert health.status_code == 200
        assert len(slow.still_open()) == SLOW_CONNECTIONS  # answered while they all were open
        ends = time.monotonic() + 60  # 40 s, the most mod_reqtimeout allows headers, and slack
        while slow.still_open() and time.monotonic() < ends:
            time.sleep(0.5)  # polling the slow connections, bounded by the deadline above
        assert not slow.still_open(), "mod_reqtimeout left slow connections open"
    assert requests.get(hit, timeout=NORMAL_REQUEST_DEADLINE).status_code == 200
