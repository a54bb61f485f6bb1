"""Start the servers under test as real processes on loopback ports, and read their memory.

``start_pymager`` writes a configuration into a temporary directory (a SQLite registry there unless another
``database_url`` is given), migrates it and runs ``pymager_standalone.py``, as
``tests/functional/conftest.py`` does; ``start_bare`` runs the
minimal CherryPy app of ``benchmarks/bare_cherrypy.py`` with the same server settings.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
STARTUP_DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A server process on ``127.0.0.1:port``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def pids(self) -> list[int]:
        """The server's processes: itself, and its workers (``[server] processes`` above 1)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *(int(child) for child in children)]

    def rss_mb(self) -> float:
        return _status_kib(self.process.pid, "VmRSS") / 1024

    def reset_peak_rss(self) -> bool:
        """Reset the kernel's peak-RSS mark (VmHWM) of every process to its current RSS; False if not
        allowed."""
        try:
            for pid in self.pids():
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def peak_rss_mb(self) -> float:
        return _status_kib(self.process.pid, "VmHWM") / 1024

    def peak_rss_by_process_mb(self) -> dict[int, float]:
        """Each process's peak RSS (VmHWM) since ``reset_peak_rss``. Their sum counts the pages the
        workers share with their parent once per process: an upper bound of the server's peak."""
        return {pid: _status_kib(pid, "VmHWM") / 1024 for pid in self.pids()}

    def stop(self) -> None:
        stop_process(self.process, 15)


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate ``process``; kill it if it has not exited after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def process_rss_mb(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


class RssSampler:
    """Samples a server's RssAnon and RssFile every ``interval`` seconds while in its ``with`` block
    (the kernel keeps a peak only of their sum)."""

    def __init__(self, server: Process, interval: float = 0.002) -> None:
        self._pid = server.process.pid
        self._interval = interval
        self._samples: list[dict[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self._samples.append({f: _status_kib(self._pid, f) for f in ("RssAnon", "RssFile")})
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def growth_mb(self, field: str) -> float:
        """Largest sample minus the first, in MB."""
        values = [sample[field] for sample in self._samples]
        return round((max(values) - values[0]) / 1024, 1)


def _wait_ready(server: Process, path: str) -> Process:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_path.read_text()}")
        try:
            if server.get(path, timeout=1)[0] == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{server.name} not ready after {STARTUP_DEADLINE}s")
        time.sleep(0.05)  # polling a starting process, bounded by the deadline above


def _spawn(
    name: str, command: list[str], directory: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = directory / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=directory, env=env)
    return process, log_path


def write_pymager_config(
    directory: Path,
    port: int,
    thread_pool: int,
    settings: tuple[str, ...] = (),
    processes: int = 1,
    database_url: str | None = None,
) -> Path:
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    sqlite = f"sqlite:///{directory / 'registry.sqlite3'}"
    config = directory / "pymager.ini"
    config.write_text(
        "\n".join(
            [
                "[pymager]",
                f"data_directory = {data}",
                f"database_url = {database_url or sqlite}",
                *settings,  # more [pymager] lines, e.g. "reduced_copy = off"
                "[server]",
                "host = 127.0.0.1",
                f"port = {port}",
                f"thread_pool = {thread_pool}",
                f"processes = {processes}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config


def start_pymager(
    directory: Path,
    thread_pool: int,
    settings: tuple[str, ...] = (),
    processes: int = 1,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Process:
    """pymager's standalone server; with ``processes`` above 1, ready once every worker serves.
    ``env`` is added to this process's environment (an S3 bucket's credentials, say)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_pymager_config(directory, port, thread_pool, settings, processes, database_url)
    command = [sys.executable, str(REPO / "pymager_standalone.py"), "--config", str(config)]
    environment = {**os.environ, **env} if env else None
    subprocess.run([*command, "--migrate"], check=True, capture_output=True, cwd=directory, env=environment)
    process, log_path = _spawn("pymager", command, directory, environment)
    server = _wait_ready(Process("pymager", port, process, log_path), "/health")
    _wait_workers(server, processes)
    return server


def _wait_workers(server: Process, processes: int) -> None:
    """Wait until the parent logs that all its workers serve: /health answers once one does."""
    if processes == 1:
        return
    deadline = time.monotonic() + STARTUP_DEADLINE
    while "worker processes serving" not in server.log_path.read_text():
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{server.name}'s workers not ready:\n{server.log_path.read_text()}")
        time.sleep(0.05)  # polling a starting process's log, bounded by the deadline above


def start_bare(directory: Path, served_file: Path, thread_pool: int) -> Process:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "bare_cherrypy.py"),
        "--file",
        str(served_file),
        "--port",
        str(port),
        "--thread-pool",
        str(thread_pool),
    ]
    process, log_path = _spawn("bare-cherrypy", command, directory)
    return _wait_ready(Process("bare-cherrypy", port, process, log_path), "/file")
