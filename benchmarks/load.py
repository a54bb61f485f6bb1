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
