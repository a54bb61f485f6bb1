"""Deadlines for slow clients on the standalone server, as Apache's mod_reqtimeout sets them.

cheroot's ``socket_timeout`` bounds each read, not a request: a client that sends one header line
every few seconds holds a worker thread for as long as it likes (a slowloris). Here the reads of one
request share deadlines:

- the request line and headers must have arrived ``header_timeout`` seconds after the request began;
- the body must arrive at ``min_body_rate`` bytes per second on average, after the same allowance
  (mod_reqtimeout's ``body=20,MinRate=500``: 20 s, plus one more second per 500 bytes received).

A read that would wait past its deadline fails as cheroot's own timeout does (``TimeoutError("timed
out")``): a 408 when nothing was answered yet, and the connection is closed. Bytes that have already
arrived are always read, so a client that sent its body in time is never cut off because the
application was slow to read it. ``socket_timeout`` still bounds each read.

This bounds how long one slow client holds a worker thread; it does not make a pool of
``thread_pool`` threads withstand more slow clients than it has threads (README, "Slow and greedy
clients"): on a public network the standalone server belongs behind Apache.

It is cheroot's own HTTP stack with another socket reader: ``DeadlineServer`` is CherryPy's
``CPWSGIServer`` whose connections read through ``_DeadlineSocketIO``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cheroot.makefile import MakeFile, StreamReader
from cheroot.server import HTTPConnection
from cherrypy._cpwsgi_server import CPWSGIHTTPRequest, CPWSGIServer

# Once a deadline has passed, a read still takes what has already arrived: it waits this long at most.
_ALREADY_ARRIVED = 0.001


@dataclass
class _Phase:
    """The deadline of the reads of one part of a request: ``allowance`` seconds after ``started``,
    one more second per ``rate`` bytes received (``rate`` 0: a fixed deadline)."""

    started: float
    allowance: float
    rate: int = 0
    received: int = 0

    def deadline(self) -> float:
        extension = self.received / self.rate if self.rate else 0.0
        return self.started + self.allowance + extension


class _DeadlineSocketIO(socket.SocketIO):
    """A connection's socket reads, each waiting no longer than the current phase's deadline."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__(sock, "rb")
        self._socket = sock
        self._timeout = timeout  # cheroot's socket_timeout, set on the socket when it was accepted
        self.phase: _Phase | None = None

    def readinto(self, buffer: Any) -> int | None:
        phase = self.phase
        if phase is None:
            return super().readinto(buffer)
        wait = phase.deadline() - time.monotonic()
        if wait >= self._timeout:  # the usual case: socket_timeout comes first, nothing to change
            count = super().readinto(buffer)
        else:
            self._socket.settimeout(max(wait, _ALREADY_ARRIVED))
            try:
                count = super().readinto(buffer)
            finally:
                self._socket.settimeout(self._timeout)
        phase.received += count or 0
        return count


class _DeadlineReader(StreamReader):
    """cheroot's socket stream reader, over ``_DeadlineSocketIO``."""

    def __init__(self, sock: socket.socket, bufsize: int, timeout: float) -> None:
        self.deadlines = _DeadlineSocketIO(sock, timeout)
        super(StreamReader, self).__init__(self.deadlines, bufsize)  # StreamReader's own makes a SocketIO
        self.bytes_read = 0


class _DeadlineRequest(CPWSGIHTTPRequest):  # type: ignore[misc]
    """CherryPy's request, reading its head and its body under the server's deadlines."""

    def parse_request(self) -> None:
        self._begin(rate=0)
        super().parse_request()

    def respond(self) -> None:
        self._begin(rate=self.server.min_body_rate)
        try:
            super().respond()
        finally:
            self._deadlines().phase = None  # between requests, only socket_timeout applies

    def _begin(self, rate: int) -> None:
        self._deadlines().phase = _Phase(time.monotonic(), self.server.header_timeout, rate)

    def _deadlines(self) -> _DeadlineSocketIO:
        deadlines: _DeadlineSocketIO = self.conn.rfile.deadlines
        return deadlines


class _DeadlineConnection(HTTPConnection):
    RequestHandlerClass = _DeadlineRequest

    def __init__(
        self, server: DeadlineServer, sock: socket.socket, makefile: Callable[..., Any] = MakeFile
    ) -> None:
        def files(sock: socket.socket, mode: str, bufsize: int) -> Any:
            if "r" in mode:
                return _DeadlineReader(sock, bufsize, server.timeout)
            return makefile(sock, mode, bufsize)

        super().__init__(server, sock, files)


class DeadlineServer(CPWSGIServer):  # type: ignore[misc]
    """CherryPy's HTTP server (cheroot) with request deadlines; give it to ``cherrypy.server.httpserver``
    once ``cherrypy.server`` is configured (it reads its settings then)."""

    def __init__(self, adapter: object, header_timeout: float, min_body_rate: int) -> None:
        super().__init__(adapter)
        if self.ssl_adapter is not None:  # TLS has socket readers of its own; pymager configures none
            raise ValueError("request deadlines are implemented for plain HTTP only")
        # CPWSGIServer sets RequestHandlerClass on the connection class it had: set ours after it.
        self.ConnectionClass = _DeadlineConnection
        self.header_timeout = header_timeout
        self.min_body_rate = min_body_rate
