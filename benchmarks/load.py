"""Load generators: wrk for cache hits, small Python clients for cold keys, bursts and uploads."""

from __future__ import annotations

import http.client
import re
import selectors
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * _UNITS[match[2]] * 1000


def run_wrk(url: str, connections: int, seconds: float) -> WrkResult:
    """``wrk --latency`` with ``connections`` connections; one wrk thread per core at most."""
    threads = max(1, min(2, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if rate is None or total is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non_2xx[1]) if non_2xx else 0
    return WrkResult(
        float(rate[1]),
        _duration_ms(percentiles["50"]),
        _duration_ms(percentiles["99"]),
        int(total[1]),
        errors,
    )


def timed_get(port: int, path: str, timeout: float = 120.0) -> float:
    """Seconds for one GET on a new connection, the whole body read; raises unless 200."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return elapsed


def concurrent_gets(port: int, paths: Sequence[str], concurrency: int) -> float:
    """Wall seconds for ``paths`` fetched by ``concurrency`` threads, each taking the next path."""
    pending = list(reversed(paths))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                path = pending.pop()
            try:
                timed_get(port, path)
            except BaseException as exc:  # reported after the join
                failures.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"concurrent GETs failed: {failures[0]!r}")
    return elapsed


def burst(port: int, path: str, count: int, timeout: float = 120.0) -> tuple[float, list[int]]:
    """Open ``count`` connections, then send one GET on each at once and read every response from one
    thread (no client threads competing for the CPU). Returns (wall seconds from the first send to the
    last byte, status codes)."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=timeout) for _ in range(count)]
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytearray] = {}
    try:
        started = time.perf_counter()
        for sock in sockets:
            sock.sendall(request)
            sock.setblocking(False)
            received[sock] = bytearray()
            selector.register(sock, selectors.EVENT_READ)
        open_count = count
        deadline = started + timeout
        while open_count:
            events = selector.select(timeout=max(0.0, deadline - time.perf_counter()))
            if not events:
                raise TimeoutError(f"burst: {open_count} responses missing after {timeout}s")
            for key, _ in events:
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                sock = ready
                chunk = sock.recv(1 << 16)
                if chunk:
                    received[sock] += chunk
                else:
                    selector.unregister(sock)
                    open_count -= 1
        elapsed = time.perf_counter() - started
    finally:
        selector.close()
        for sock in sockets:
            sock.close()
    statuses = [int(bytes(data[9:12])) if data[:5] == b"HTTP/" else 0 for data in received.values()]
    return elapsed, statuses


def upload(port: int, image_id: str, path: Path, timeout: float = 300.0) -> int:
    """POST ``path`` as multipart field ``file``, streamed from disk in chunks; returns the status."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest("POST", f"/original/{image_id}")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        connection.send(head)
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                connection.send(chunk)
        connection.send(tail)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@dataclass(frozen=True)
class Sample:
    due: float  # seconds after sampling began
    seconds: float  # from when it was due to its last byte


@dataclass(frozen=True)
class FloodResult:
    seconds: float  # from the flood's start until every cold path was answered 200
    cold_statuses: dict[int, int]  # status → responses, retries included
    arrival_seconds: float  # what a hit asked right behind the flood's requests took
    hits: list[Sample]  # the hits asked after it, while the flood ran
    health: list[Sample]  # the /health requests asked after it, while the flood ran


def _ask(port: int, path: str, timeout: float) -> http.client.HTTPConnection:
    """Send one GET on a new connection; its answer is read by ``_answer``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("GET", path)
    return connection


def _answer(connection: http.client.HTTPConnection) -> tuple[int, str | None]:
    """(status, Retry-After) of the GET sent on ``connection``, the whole body read; closes it."""
    try:
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        connection.close()


def cold_flood(
    port: int,
    cold_paths: Sequence[str],
    hit_path: str,
    interval: float = 0.01,
    health_every: int = 10,
    clients: int = 64,
    timeout: float = 300.0,
) -> FloodResult:
    """Every path of ``cold_paths`` asked at once, each by its own thread; a 503 is asked again after
    its ``Retry-After``, as a well-behaved client would, until 200.

    Once every one has been sent, one hit is asked behind them: it waits for the server to take in the
    flood's arrival, like a request behind any burst of as many (``arrival_seconds``). From its answer
    on, ``hit_path`` is asked every ``interval`` seconds (every ``health_every``-th time ``/health``
    instead), each on a new connection, until the last cold path is answered: hits are due on a fixed
    schedule and timed from when they were due, so a stalled server cannot hide its stall by delaying
    the next hit. ``clients`` threads take turns, enough for every hit due during a stall of
    ``clients × interval`` to be asked on time, as independent clients would."""
    barrier = threading.Barrier(len(cold_paths) + 1)
    sent = threading.Semaphore(0)
    lock = threading.Lock()
    statuses: dict[int, int] = {}
    failures: list[BaseException] = []
    deadline = time.monotonic() + timeout
    flooding = threading.Event()
    flooding.set()

    def cold(path: str) -> None:
        barrier.wait()
        try:
            connection = _ask(port, path, timeout)
            sent.release()
            while True:
                status, retry_after = _answer(connection)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    return
                if status != 503 or time.monotonic() > deadline:
                    raise RuntimeError(f"GET {path}: {status}")
                time.sleep(float(retry_after or 1))  # what the server asked for
                connection = _ask(port, path, timeout)
        except BaseException as exc:  # reported after the join
            failures.append(exc)
            sent.release()

    hits: list[Sample] = []
    health: list[Sample] = []
    schedule = iter(range(1 << 62))
    sampling = 0.0

    def sampler() -> None:
        while flooding.is_set():
            with lock:
                number = next(schedule)
            due = sampling + number * interval
            time.sleep(max(0.0, due - time.perf_counter()))  # the schedule, not a wait for the server
            path, times = (
                ("/health", health) if number % health_every == health_every - 1 else (hit_path, hits)
            )
            status, _ = _answer(_ask(port, path, timeout))
            with lock:
                times.append(Sample(due - sampling, time.perf_counter() - due))
            if status != 200:
                failures.append(RuntimeError(f"GET {path} during the flood: {status}"))
                return

    threads = [threading.Thread(target=cold, args=(path,)) for path in cold_paths]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for _ in cold_paths:
        sent.acquire()
    status, _ = _answer(_ask(port, hit_path, timeout))
    sampling = time.perf_counter()
    arrival = sampling - started
    if status != 200:
        failures.append(RuntimeError(f"GET {hit_path} behind the flood: {status}"))
    samplers = [threading.Thread(target=sampler) for _ in range(clients)]
    for thread in samplers:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flooding.clear()
    for thread in samplers:
        thread.join()
    if failures:
        raise RuntimeError(f"cold flood failed: {failures[0]!r}")
    return FloodResult(elapsed, dict(sorted(statuses.items())), arrival, hits, health)
