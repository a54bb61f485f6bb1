"""Slow clients on loopback connections: each sends a request line, then one header line every
``interval`` seconds and never the blank line that ends the headers (a slowloris), for at most
``limit`` seconds. Used by ``test_slowloris.py`` and by the benchmark (``benchmarks/scenarios.py``)."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from types import TracebackType


class SlowClients:
    """``count`` slow connections to ``127.0.0.1:port``, opened on entry and closed on exit."""

    def __init__(self, port: int, count: int, interval: float = 2.0, limit: float = 120.0) -> None:
        self._port = port
        self._count = count
        self._interval = interval
        self._limit = limit
        self._sockets: list[socket.socket] = []
        self._closed_by_server: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> SlowClients:
        try:
            for number in range(self._count):
                sock = socket.create_connection(("127.0.0.1", self._port), timeout=10)
                sock.sendall(f"GET /health?slow={number} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
                self._sockets.append(sock)
        except BaseException:
            self._close()
            raise
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._close()

    def _trickle(self) -> None:
        """One more header line on every open connection each ``interval``, until stopped or ``limit``."""
        ends = time.monotonic() + self._limit
        line = 0
        while not self._stop.wait(self._interval) and time.monotonic() < ends:
            line += 1
            for sock in self.still_open():
                try:
                    sock.sendall(f"X-Slow-{line}: {'x' * 8}\r\n".encode())
                except OSError:  # the server closed it: what a request deadline does
                    with self._lock:
                        self._closed_by_server.add(sock)

    def still_open(self) -> list[socket.socket]:
        """The connections the server has not closed nor answered (it only answers to close: 408)."""
        with self._lock:
            candidates = [sock for sock in self._sockets if sock not in self._closed_by_server]
        with selectors.DefaultSelector() as selector:
            for sock in candidates:
                selector.register(sock, selectors.EVENT_READ)
            readable = {key.fileobj for key, _ in selector.select(timeout=0)}
        with self._lock:
            self._closed_by_server.update(sock for sock in candidates if sock in readable)
            return [sock for sock in self._sockets if sock not in self._closed_by_server]

    def _close(self) -> None:
        for sock in self._sockets:
            sock.close()
