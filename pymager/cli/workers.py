"""``pymager serve`` (and ``pymager_standalone.py``): one server process, or with ``[server] processes``
above 1 a parent and that many workers sharing its listening socket.

A process serves its cache hits and the Python parts of its generations under one GIL: with
``processes = 2`` on two cores, both cores run Python at once (benchmarks/README.md). The parent:

- loads the configuration, binds and listens, and forks the workers. It imports nothing of the server
  (about 18 MB against 80 MB: its memory counts in the server's) and starts no thread, so forking it is
  safe; each worker builds its own application (registry engine, generation locks, thread pool) and
  serves on the inherited socket (``pymager/web/listener.py``). Generation stays once across workers
  as across any processes sharing a registry: the generation locks are cross-process.
- SIGTERM or SIGINT: SIGTERM to every worker, each finishing its requests; after ``STOP_DEADLINE``
  the rest are killed. The parent exits once every worker has, 0. A worker whose parent dies gets
  SIGTERM too (Linux), so no worker outlives it.
- A worker that dies after it was serving (a crash, the OOM killer) is logged as an error and replaced;
  meanwhile the others serve, and connections wait in the socket's queue. One that dies before it was
  serving (a database that refuses, a data directory it cannot use) would die again: the parent stops
  the others and exits with its status, 2 for a start-up error, as one process would.
- Metrics: unless ``PROMETHEUS_MULTIPROC_DIR`` is set, the parent makes a private directory for it
  (removed at exit), so that every worker's ``/metrics`` reports the sum over all of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

from pymager.config import ConfigError, Settings, config_path, load_settings

log = logging.getLogger("pymager")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The log lines of several workers are told apart by their process id.
WORKERS_LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# Seconds workers have to finish their requests once told to stop; then they are killed.
STOP_DEADLINE = 30.0
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PR_SET_PDEATHSIG = 1  # prctl(2)
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


def serve(config: str | None) -> int:
    """Serve the configuration ``config`` (else ``$PYMAGER_CONFIG``, else ``./pymager.ini``) until
    SIGTERM or SIGINT; a configuration or start-up failure is one line on stderr and status 2."""
    try:
        settings = load_settings(config_path(config))
    except ConfigError as exc:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        print(f"pymager: {exc}", file=sys.stderr)
        return 2
    if settings.processes == 1:
        from pymager.cli import admin  # the server itself, loaded only to serve

        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        return admin.guarded(lambda: admin.serve(settings))
    logging.basicConfig(level=logging.INFO, format=WORKERS_LOG_FORMAT)
    return Supervisor(settings).run()


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, as cheroot would make it."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)  # the queue cheroot is given (pymager.cli.admin.server_config)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@dataclass
class _Worker:
    pid: int
    ready: int  # read end of a pipe the worker writes one byte to once it serves
    serving: bool = False


class Supervisor:
    """The parent of ``settings.processes`` workers (see the module's documentation)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._workers: dict[int, _Worker] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        self._listener: socket.socket | None = None
        self._announced = False

    def run(self) -> int:
        settings = self._settings
        try:
            self._listener = listen(settings.host, settings.port)
        except OSError as exc:
            print(f"pymager: [server] host, port = {settings.host}:{settings.port}: {exc}", file=sys.stderr)
            return 2
        own_metrics = None
        if not os.environ.get(METRICS_ENV):
            own_metrics = os.environ[METRICS_ENV] = tempfile.mkdtemp(prefix="pymager-metrics-")
        for fd in (self._wake_read, self._wake_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_write)
        for number in _HANDLED:
            signal.signal(number, lambda *_: None)  # woken through the wakeup fd
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        host, port = self._listener.getsockname()[:2]
        log.info("%d worker processes on http://%s:%d/", settings.processes, host, port)
        try:
            for _ in range(settings.processes):
                self._start_worker()
            return self._supervise()
        finally:
            self._stop_workers()
            self._listener.close()
            if own_metrics is not None:
                shutil.rmtree(own_metrics, ignore_errors=True)

    def _supervise(self) -> int:
        while True:
            for key, _ in self._selector.select():
                if key.fd == self._wake_read:
                    signals = set(os.read(self._wake_read, 512))
                    if signals & {signal.SIGTERM, signal.SIGINT}:
                        log.info("stopping %d worker processes", len(self._workers))
                        return 0
                    status = self._reap()
                    if status is not None:
                        return status
                else:
                    self._read_ready(key.data)

    def _read_ready(self, worker: _Worker) -> None:
        with contextlib.suppress(BlockingIOError):
            if not worker.serving and os.read(worker.ready, 1) == b"1":
                worker.serving = True
                log.info("worker %d serving", worker.pid)
        self._selector.unregister(worker.ready)  # a byte, or the end: the worker wrote it or exited
        if not self._announced and all(w.serving for w in self._workers.values()):
            self._announced = True
            log.info("all %d worker processes serving", len(self._workers))

    def _reap(self) -> int | None:
        """Collect the workers that exited: replace those that had served; the status to exit with
        if one died during start-up."""
        while self._workers:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return None
            worker = self._workers.pop(pid, None)
            if worker is None:
                continue
            self._forget(worker)
            code = os.waitstatus_to_exitcode(status)
            how = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
            if not worker.serving:
                log.error("worker %d ended during start-up (%s); stopping", pid, how)
                return 2 if code == 2 else 1
            log.error("worker %d died (%s); starting another", pid, how)
            self._start_worker()
        return None

    def _forget(self, worker: _Worker) -> None:
        if worker.ready in self._selector.get_map():
            self._read_ready(worker)
        os.close(worker.ready)

    def _start_worker(self) -> None:
        assert self._listener is not None
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            os.close(ready_read)
            _become_worker(self._settings, self._listener, ready_write, self._inherited_fds())
        os.close(ready_write)
        worker = self._workers[pid] = _Worker(pid, ready_read)
        self._selector.register(ready_read, selectors.EVENT_READ, worker)

    def _inherited_fds(self) -> list[int]:
        return [self._wake_read, self._wake_write, *(worker.ready for worker in self._workers.values())]

    def _stop_workers(self) -> None:
        """SIGTERM to every worker, and wait for them all; those still running after
        ``STOP_DEADLINE`` are killed."""
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_DEADLINE
        while self._workers:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                self._forget(self._workers.pop(pid))
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._selector.select(remaining)  # woken by SIGCHLD through the wakeup fd
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_read, 512)
        for pid, worker in list(self._workers.items()):
            log.error("worker %d still running %.0f s after SIGTERM; killing it", pid, STOP_DEADLINE)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._forget(worker)
            del self._workers[pid]


def _become_worker(settings: Settings, listener: socket.socket, ready: int, parents: list[int]) -> None:
    """In a forked child: drop the parent's signal handling and descriptors, serve, exit."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        for number in _HANDLED:
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in parents:
            os.close(fd)
        _die_with_parent()
        status = _serve_worker(settings, listener, ready)
    except BaseException:
        traceback.print_exc()
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent dies, however it dies (kill -9 included)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _serve_worker(settings: Settings, listener: socket.socket, ready: int) -> int:
    from pymager.cli import admin  # the server is loaded in each worker, never in the parent

    def serving() -> None:
        os.write(ready, b"1")
        os.close(ready)

    return admin.guarded(lambda: admin.serve(settings, listener=listener, ready=serving))
