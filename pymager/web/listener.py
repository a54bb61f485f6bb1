"""The standalone server of one worker among ``[server] processes``: cheroot on a listening socket its
parent bound, started and stopped with the CherryPy engine.

Every worker accepts from the one socket its parent bound (``pymager/cli/workers.py``), so the kernel
keeps one queue of connections and whichever worker is free takes the next: none is lost when a worker
dies, and a busy worker does not get its share regardless (as it would with ``SO_REUSEPORT``, which
spreads connections by hash, and drops those queued on a socket that closes).

CherryPy's own server plugin (``cherrypy.server``) is not used for it: it checks that the port is free
before starting and after stopping, and with a socket shared by design the port never is.
"""

from __future__ import annotations

import logging
import socket
import threading

import cherrypy
from cherrypy.process.plugins import SimplePlugin

from pymager.web.deadlines import DeadlineServer

log = logging.getLogger(__name__)


class SharedSocketServer(DeadlineServer):
    """``DeadlineServer`` serving on ``listener``, a socket already bound and listening."""

    def __init__(self, adapter: object, header_timeout: float, min_body_rate: int, listener: socket.socket):
        super().__init__(adapter, header_timeout, min_body_rate)
        self._listener = listener

    def bind(self, family: int, type: int, proto: int = 0) -> socket.socket:
        # cheroot's prepare() calls bind() to make its socket: it takes the inherited one instead.
        self.socket = self._listener
        self.bind_addr = self._listener.getsockname()[:2]
        return self._listener

    def prepare(self) -> None:
        super().prepare()
        # cheroot accepts with a 1 s timeout: on a shared socket another worker may take the connection
        # that woke this one, and a blocking accept() would then hold this worker's selector loop, and
        # every kept-alive connection it watches, until the next connection. Non-blocking, losing that
        # race is EAGAIN, which cheroot ignores.
        self._listener.setblocking(False)


class HTTPServerPlugin(SimplePlugin):  # type: ignore[misc]  # CherryPy ships no type hints
    """Runs ``server`` while the engine runs: ready before ``start`` returns, stopped (its requests
    finished) before ``stop`` returns; a failure of its loop stops the engine."""

    def __init__(self, bus: cherrypy.process.wspbus.Bus, server: SharedSocketServer) -> None:
        super().__init__(bus)
        self._server = server
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server.prepare()  # in the engine's thread, so that a failure stops start-up
        self._thread = threading.Thread(target=self._serve, name="HTTPServer")
        self._thread.start()

    start.priority = 75  # type: ignore[attr-defined]  # as cherrypy.server's: after the app's plugins

    def _serve(self) -> None:
        try:
            self._server.serve()
        except Exception:
            log.exception("the HTTP server failed; stopping")
            self.bus.exit()

    def stop(self) -> None:
        self._server.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    stop.priority = 25  # type: ignore[attr-defined]
