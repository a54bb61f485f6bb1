"""The system under soak: a PostgreSQL database and a data directory of the soak's own, and two
standalone server processes on free loopback ports sharing them (the same configuration but for
``[server] port``). The soak restarts PostgreSQL and kills one server with SIGKILL; both are here."""

from __future__ import annotations

import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from benchmarks.servers import REPO, free_port

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
READY_DEADLINE = 60.0
STOP_DEADLINE = 15.0


def _admin(url: str, statement: str) -> None:
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def create_database(admin_url: str, prefix: str = "pymager_soak") -> tuple[str, str]:
    """A new empty database ``<prefix>_<hex>`` on the admin URL's server: (name, its URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_restart_command(admin_url: str) -> list[str]:
    """``pg_ctlcluster <version> <cluster> restart`` for the Debian cluster listening on the admin
    URL's port (what restarts PostgreSQL here as root)."""
    port = make_url(admin_url).port or 5432
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for line in listing.splitlines():
        columns = line.split()
        if len(columns) >= 4 and columns[2] == str(port) and columns[3].startswith("online"):
            return ["pg_ctlcluster", columns[0], columns[1], "restart"]
    raise RuntimeError(f"no online cluster on port {port} in pg_lsclusters:\n{listing}")


def run_command(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def write_config(path: Path, data_directory: Path, database_url: str, port: int) -> Path:
    path.write_text(
        "\n".join(
            [
                "[pymager]",
                f"data_directory = {data_directory}",
                f"database_url = {database_url}",
                "[server]",
                "host = 127.0.0.1",
                f"port = {port}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def pymager(config: Path, *arguments: str) -> list[str]:
    return [sys.executable, str(REPO / "pymager_standalone.py"), "--config", str(config), *arguments]


@dataclass
class Server:
    """One standalone server process (``name`` "a" or "b"); ``incarnations`` counts its starts."""

    name: str
    port: int
    config: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: list[float] = field(default_factory=list)  # when each incarnation answered /health
    pids: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"server {self.name} is not running")
        return self.process.pid

    def start(self) -> None:
        """Start a process and poll /health, with a deadline, until it answers 200."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                pymager(self.config), stdout=log, stderr=subprocess.STDOUT, cwd=self.config.parent
            )
        self.pids.append(self.process.pid)
        self.wait_healthy()
        self.started_at.append(time.monotonic())

    def health(self, timeout: float = 2.0) -> tuple[int, dict[str, object]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        return response.status, document if isinstance(document, dict) else {}

    def wait_healthy(self, deadline_s: float = READY_DEADLINE) -> None:
        """Poll /health until 200 with the registry ok; raise if the process exits or time runs out."""
        deadline = time.monotonic() + deadline_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"server {self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                status, document = self.health()
                if status == 200 and document.get("registry") == "ok":
                    return
            except OSError:  # not listening yet, or the registry still down
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {self.name} not healthy after {deadline_s}s; see {self.log_path}")
            time.sleep(0.1)  # polling a starting process or a returning registry, bounded above

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def stop(self) -> bool:
        """SIGTERM; SIGKILL if it has not exited within ``STOP_DEADLINE``. True if it stopped by itself."""
        if self.process is None or self.process.poll() is not None:
            return True
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        return True


@dataclass
class Cluster:
    directory: Path
    data_directory: Path
    database_name: str
    database_url: str
    servers: list[Server]

    @property
    def check_config(self) -> Path:
        return self.servers[0].config


def build(directory: Path, admin_url: str) -> Cluster:
    """Create the database and data directory, write both configurations and migrate once."""
    data_directory = directory / "data"
    data_directory.mkdir(parents=True)
    name, url = create_database(admin_url)
    servers: list[Server] = []
    for server_name in ("a", "b"):
        port = free_port()
        while any(server.port == port for server in servers):  # two probes may get one port
            port = free_port()
        config = write_config(directory / f"pymager-{server_name}.ini", data_directory, url, port)
        servers.append(Server(server_name, port, config, directory / f"server-{server_name}.log"))
    migrated = run_command(pymager(servers[0].config, "--migrate"))
    if migrated.returncode != 0:
        raise RuntimeError(f"migration failed: {migrated.stdout}{migrated.stderr}")
    return Cluster(directory, data_directory, name, url, servers)


def split_command(value: str) -> list[str]:
    return shlex.split(value)
