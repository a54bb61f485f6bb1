"""A real pymager server on a loopback port: standalone on SQLite and on PostgreSQL (keeping its pictures
in the data directory, or in a SeaweedFS bucket), behind Apache httpd with mod_wsgi (``deploy/apache``,
on SQLite), and behind nginx (``deploy/nginx``, on SQLite)."""

from __future__ import annotations

import base64
import enum
import fnmatch
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pymager.adapters.db import migrate
from tests.conftest import service_missing, sqlite_url
from tests.functional import apache, nginx
from tests.functional.contract import responses_as_documented  # noqa: F401  (every response checked)
from tests.seaweed import SeaweedFS

REPO = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE = 30.0
RUN_TIMEOUT = 60.0

# What the shared functional server is configured with (tests refer to these limits).
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_DIMENSION = 2000
# What the servers behind Apache and nginx send for derived images, from their pymager.ini (the front
# server's static hits too).
FRONT_CACHE_CONTROL_DERIVED = "public, max-age=3600"
APACHE_CACHE_CONTROL_DERIVED = FRONT_CACHE_CONTROL_DERIVED


_T = TypeVar("_T")


def all_at_once(count: int, call: Callable[[int], _T]) -> list[_T]:
    """``call(0)`` … ``call(count - 1)``, each in its own thread, released together by a barrier.
    Results come back in order; an exception in any thread is raised here."""
    barrier = threading.Barrier(count)
    results: list[_T | None] = [None] * count
    failures: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call(index)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results  # type: ignore[return-value]


def pymager_command(*arguments: str) -> list[str]:
    """The command line that runs ``pymager_standalone.py`` with ``arguments``."""
    return [sys.executable, str(REPO / "pymager_standalone.py"), *arguments]


def run_pymager(
    *arguments: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``pymager_standalone.py`` with ``arguments`` to its end (``RUN_TIMEOUT`` at most), with
    ``input`` on stdin; its stdout and stderr come back as text."""
    return subprocess.run(
        pymager_command(*arguments),
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process``, and kill it if it has not ended 15 seconds later."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(no log)"


def wait_for_health(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    """Poll ``<base_url>/health`` (with a deadline) until it answers 200; raise, with the log at
    ``log_path``, if ``process`` exits or the deadline passes first."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_text(log_path)}")
        try:
            if requests.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready after {STARTUP_DEADLINE}s:\n{log_text(log_path)}")
        time.sleep(0.05)  # polling a starting process, bounded by the deadline above


def raw_post(server: Server, path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, bytes]:
    """A POST written by hand (``requests`` always sends a correct Content-Length): exactly ``headers``
    (and the server's Basic credentials, if it has any), then ``chunks`` as they are."""
    host, port = server.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("POST", path)
        if server.auth is not None:
            user, password = server.auth
            credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers = {**headers, "Authorization": f"Basic {credentials}"}
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        for chunk in chunks:
            connection.send(chunk)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, data_directory: Path, database_url: str, port: int, **extra: object) -> Path:
    """``extra`` keys go to [pymager] (overriding the defaults here); a key named
    ``"<section>.<key>"`` (pass it as ``**{...}``) goes to that section, e.g. ``"server.socket_timeout"``
    or ``"auth.api_keys"``."""
    sections: dict[str, dict[str, object]] = {
        "pymager": {
            "data_directory": data_directory,
            "database_url": database_url,
            "max_upload_bytes": MAX_UPLOAD_BYTES,
            "max_dimension": MAX_DIMENSION,
        },
        "server": {"host": "127.0.0.1", "port": port, "thread_pool": 32},
    }
    for key, value in extra.items():
        section, _, name = key.rpartition(".")
        sections.setdefault(section or "pymager", {})[name] = value
    lines = []
    for section, entries in sections.items():
        lines += [f"[{section}]", *(f"{name} = {value}" for name, value in entries.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PROBLEM_PREFIX = "urn:pymager:problem:"


def assert_problem(
    response: requests.Response, status: int, detail: str = "", problem: str | None = None
) -> dict[str, object]:
    """The response is an RFC 9457 problem with ``status`` whose detail matches ``detail``, and whose
    type is ``urn:pymager:problem:<problem>`` when ``problem`` is given. Every problem is pymager's."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    extensions = {"limit"} if problem == "decoding-limit" else set()
    assert body.keys() == {"type", "title", "status", "detail", *extensions}
    assert body["status"] == status
    assert str(body["type"]).startswith(PROBLEM_PREFIX), body["type"]
    if problem is not None:
        assert body["type"] == PROBLEM_PREFIX + problem
    assert re.search(detail, str(body["detail"])), body["detail"]
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


def sample_value(text_format: str, name: str, labels: dict[str, str]) -> float:
    """Read one sample from the Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text_format):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@dataclass
class Server:
    """A running server and what it stores, for tests to look behind the API."""

    base_url: str
    data_directory: Path
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path
    # Behind a front server ("apache": deploy/apache, "nginx": deploy/nginx): cache hits are served by
    # it without Python, and POST and DELETE of originals need these Basic credentials. The mod_wsgi
    # daemon processes keep their metrics in metrics_directory; behind nginx, ``app`` is the standalone
    # server nginx proxies to (stopped with it).
    front: Literal["apache", "nginx"] | None = None
    auth: tuple[str, str] | None = None
    metrics_directory: Path | None = None
    app: Server | None = None
    # Keeping its pictures in this SeaweedFS bucket (storage_url = s3://<bucket>/pymager).
    s3: tuple[SeaweedFS, str] | None = None

    @property
    def behind_front(self) -> bool:
        """Whether a front server answers some requests itself (cache hits, write passwords)."""
        return self.front is not None

    @property
    def behind_apache(self) -> bool:
        return self.front == "apache"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def rows(self, image_id: str) -> tuple[int, int]:
        """(originals rows, derived rows) of ``image_id`` in the registry."""
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                originals = connection.execute(
                    text("SELECT count(*) FROM originals WHERE id = :id"), {"id": image_id}
                ).scalar_one()
                derived = connection.execute(
                    text("SELECT count(*) FROM derived WHERE original_id = :id"), {"id": image_id}
                ).scalar_one()
        finally:
            engine.dispose()
        return int(originals), int(derived)

    def files_of(self, image_id: str) -> list[Path]:
        """The original and derived files of ``image_id`` (in a bucket: its objects' keys)."""
        if self.s3 is not None:
            weed, bucket = self.s3
            original = f"pymager/originals/{image_id}"
            keys = [key for key in weed.keys(bucket, original) if key == original]
            return [Path(key) for key in keys + weed.keys(bucket, f"pymager/derived/{image_id}/")]
        found = [self.data_directory / "originals" / image_id]
        found += list((self.data_directory / "derived" / image_id).glob("*"))
        return [path for path in found if path.exists()]

    def stored_originals(self) -> set[str]:
        """The ids of every original stored (in the data directory or the bucket)."""
        if self.s3 is not None:
            weed, bucket = self.s3
            return {key.rpartition("/")[2] for key in weed.keys(bucket, "pymager/originals/")}
        return {path.name for path in (self.data_directory / "originals").iterdir()}

    def derived_names(self, image_id: str, pattern: str = "*") -> list[str]:
        """The names (``30x30.jpg``, ``.traits-opaque``) of the derived files of ``image_id`` matching
        ``pattern``, sorted: in the data directory or, under the incarnation, in the bucket."""
        if self.s3 is not None:
            weed, bucket = self.s3
            names = [key.rpartition("/")[2] for key in weed.keys(bucket, f"pymager/derived/{image_id}/")]
            return sorted(name for name in names if fnmatch.fnmatchcase(name, pattern))
        return sorted(path.name for path in (self.data_directory / "derived" / image_id).glob(pattern))

    def temporary_files(self) -> list[Path]:
        return [p for p in self.data_directory.rglob(".*") if p.name.startswith((".tmp-", ".trash-"))]

    def leaves_nothing(self, image_id: str) -> bool:
        return self.rows(image_id) == (0, 0) and not self.files_of(image_id) and not self.temporary_files()

    def metric(self, name: str, **labels: str) -> float:
        """The current value of one sample on ``/metrics`` (0 when absent)."""
        text_format = requests.get(self.url("/metrics"), timeout=10).text
        return sample_value(text_format, name, labels)

    def run_tool(
        self, *arguments: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``pymager_standalone.py --config <this server's config> <arguments>`` (with the bucket's
        credentials, if it keeps its pictures in one, and ``env``)."""
        added = {**(self.s3[0].environment if self.s3 is not None else {}), **(env or {})}
        return run_pymager(
            "--config", str(self.config_path), *arguments, env={**os.environ, **added} if added else None
        )

    def stop(self) -> None:
        stop_process(self.process)
        if self.app is not None:
            self.app.stop()


class _Credentials(enum.Enum):
    SERVERS = enum.auto()


def upload(
    server: Server,
    image_id: str,
    data: bytes,
    *,
    field: str = "file",
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | Literal[_Credentials.SERVERS] | None = _Credentials.SERVERS,
    timeout: float = 60,
) -> requests.Response:
    """POST ``data`` to ``/original/<image_id>`` as the multipart part ``field`` (with ``filename`` and
    ``content_type``), beside the text fields ``form``. ``auth`` is Basic credentials: the server's own
    (``server.auth``, what Apache guards writes with) unless given; ``None`` sends none, for ``headers``
    such as a Bearer ``Authorization`` or for an anonymous write."""
    return requests.post(
        server.url(f"/original/{image_id}"),
        files={field: (filename, data, content_type)},
        data=form,
        headers=headers,
        auth=server.auth if auth is _Credentials.SERVERS else auth,
        timeout=timeout,
    )


def start_server(
    directory: Path,
    database_url: str,
    data_directory: Path | None = None,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    **extra: object,
) -> Server:
    """Migrate, start ``pymager_standalone.py`` (after ``command``, a wrapper such as ``unshare``, if
    given; with ``env`` added to the environment) and wait (polling /health, with a deadline) until it
    answers. Servers given the same ``database_url`` and ``data_directory`` share their state."""
    directory.mkdir(parents=True, exist_ok=True)
    data_directory = data_directory or directory / "data"
    port = free_port()
    config = write_config(directory / "pymager.ini", data_directory, database_url, port, **extra)
    data_directory.mkdir(exist_ok=True)
    migrate.upgrade(database_url)
    log_path = directory / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*(command or []), *pymager_command("--config", str(config))],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env={**os.environ, **env} if env else None,
        )
    server = Server(f"http://127.0.0.1:{port}", data_directory, database_url, process, log_path, config)
    wait_until_ready(server)
    return server


def start_s3_server(
    request: pytest.FixtureRequest,
    directory: Path,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    **extra: object,
) -> Server:
    """A standalone server on PostgreSQL (``database_url``, else a new database) keeping its pictures in
    a new bucket of the session's SeaweedFS (removed when ``request`` ends), with its credentials in the
    environment, as the standard AWS chain reads them."""
    weed: SeaweedFS = request.getfixturevalue("seaweedfs")
    if database_url is None:
        make_database: Callable[[], str] = request.getfixturevalue("make_postgres_database")
        database_url = make_database()
    bucket = weed.make_bucket()
    request.addfinalizer(lambda: weed.remove_bucket(bucket))
    server = start_server(
        directory,
        database_url,
        env={**weed.environment, **(env or {})},
        **{"storage_url": f"s3://{bucket}/pymager", "s3_endpoint_url": weed.endpoint_url, **extra},
    )
    server.s3 = (weed, bucket)
    return server


def wait_until_ready(server: Server) -> None:
    """Poll /health (with a deadline) until it answers 200; stop the server and raise if it never does
    (or if anything fails meanwhile: a server left running would outlive the test session)."""
    try:
        wait_for_health(server.process, server.base_url, server.log_path)
    except BaseException:
        server.stop()
        raise


def start_apache(directory: Path, env: dict[str, str] | None = None, **extra: object) -> Server:
    """Render the shipped ``deploy/apache`` configuration for a free loopback port, start a real Apache
    httpd with mod_wsgi on it (SQLite registry, two daemon processes) and wait until it answers.
    ``extra`` goes to ``pymager.ini`` as in ``write_config``; with ``"auth.api_keys"`` the site passes
    Bearer keys on to the application instead of asking for Basic credentials."""
    installation = apache.find_installation()
    if isinstance(installation, str):
        service_missing(installation)
    data_directory = directory / "data"
    data_directory.mkdir(parents=True)
    metrics_directory = directory / "metrics"  # emptied at each start: a new directory here
    metrics_directory.mkdir()
    database_url = sqlite_url(directory / "registry.sqlite3")
    port = free_port()
    config = write_config(
        directory / "pymager.ini",
        data_directory,
        database_url,
        port,
        cache_control_derived=APACHE_CACHE_CONTROL_DERIVED,
        **extra,
    )
    migrate.upgrade(database_url)
    htpasswd = apache.write_htpasswd(directory / "htpasswd")
    site = apache.render_site(config, directory / "pymager-site.conf", port, htpasswd)
    process = apache.start_httpd(
        installation,
        apache.write_server_config(directory, installation, port, site),
        {"PYMAGER_CONFIG": str(config), "PROMETHEUS_MULTIPROC_DIR": str(metrics_directory), **(env or {})},
        directory / "httpd.out",
    )
    server = Server(
        f"http://127.0.0.1:{port}",
        data_directory,
        database_url,
        process,
        directory / "error.log",
        config,
        front="apache",
        auth=None if "auth.api_keys" in extra else (apache.USER, apache.PASSWORD),
        metrics_directory=metrics_directory,
    )
    wait_until_ready(server)
    return server


def start_nginx(directory: Path, env: dict[str, str] | None = None, **extra: object) -> Server:
    """Start a standalone server (SQLite registry, ``etag_style = nginx``) and, in front of it, a real
    nginx on a free loopback port with the shipped ``deploy/nginx`` site rendered from that server's
    ``pymager.ini``; wait until it answers. ``extra`` goes to ``pymager.ini`` as in ``write_config``;
    with ``"auth.api_keys"`` the site passes the keys on to the application instead of asking for
    Basic credentials. The returned server's ``log_path`` is the application's log."""
    binary = nginx.find_binary()
    if isinstance(binary, str):
        service_missing(binary)
    app = start_server(
        directory / "app",
        sqlite_url(directory / "registry.sqlite3"),
        data_directory=directory / "data",
        env=env,
        etag_style="nginx",
        cache_control_derived=FRONT_CACHE_CONTROL_DERIVED,
        **extra,
    )
    try:
        port = free_port()
        htpasswd = apache.write_htpasswd(directory / "htpasswd")
        site = nginx.render_site(app.config_path, directory / "pymager-site.conf", port, htpasswd)
        process = nginx.start_nginx(
            binary, nginx.write_server_config(directory, site), directory / "nginx.out"
        )
    except BaseException:
        app.stop()
        raise
    server = Server(
        f"http://127.0.0.1:{port}",
        app.data_directory,
        app.database_url,
        process,
        app.log_path,
        app.config_path,
        front="nginx",
        auth=None if "auth.api_keys" in extra else (apache.USER, apache.PASSWORD),
        app=app,
    )
    wait_until_ready(server)
    return server


def stop_and_check_log(server: Server) -> None:
    """Stop ``server``; fail if it logged a traceback."""
    server.stop()
    log = log_text(server.log_path)
    assert "Traceback" not in log, f"the server logged a traceback:\n{log}"


@pytest.fixture(scope="session")
def apache_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """pymager behind a real Apache httpd + mod_wsgi, configured from ``deploy/apache``."""
    running = start_apache(tmp_path_factory.mktemp("apache"))
    yield running
    stop_and_check_log(running)


@pytest.fixture(scope="session")
def nginx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """pymager's standalone server behind a real nginx, configured from ``deploy/nginx``."""
    running = start_nginx(tmp_path_factory.mktemp("nginx"))
    yield running
    stop_and_check_log(running)


# The ways pymager runs, as the parameters of a server fixture (see ``start_kind``).
SERVER_KINDS = [
    pytest.param("standalone-sqlite", id="standalone-sqlite"),
    pytest.param("standalone-postgres", id="standalone-postgres", marks=pytest.mark.postgres),
    pytest.param(
        "standalone-postgres-s3",
        id="standalone-postgres-s3",
        marks=[pytest.mark.postgres, pytest.mark.s3],
    ),
    pytest.param("apache", id="apache", marks=pytest.mark.apache),
    pytest.param("nginx", id="nginx", marks=pytest.mark.nginx),
]


def start_kind(
    request: pytest.FixtureRequest, directory: Path, env: dict[str, str] | None = None, **extra: object
) -> Server:
    """Start the server of the fixture parameter's kind (``SERVER_KINDS``; any other standalone kind
    runs on SQLite) in ``directory``, with ``env`` added to its environment and ``extra`` configuration
    as ``start_server`` takes it."""
    if request.param == "apache":
        return start_apache(directory, env=env, **extra)
    if request.param == "nginx":
        return start_nginx(directory, env=env, **extra)
    if request.param == "standalone-postgres":
        make_database: Callable[[], str] = request.getfixturevalue("make_postgres_database")
        return start_server(directory, make_database(), env=env, **extra)
    if request.param == "standalone-postgres-s3":
        return start_s3_server(request, directory, env=env, **extra)
    return start_server(directory, sqlite_url(directory / "registry.sqlite3"), env=env, **extra)


@pytest.fixture(scope="session", params=SERVER_KINDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server the HTTP contract is checked against, however it runs."""
    if request.param in ("apache", "nginx"):
        front_server: Server = request.getfixturevalue(f"{request.param}_server")
        yield front_server
        return
    running = start_kind(request, tmp_path_factory.mktemp(f"server-{request.param}"))
    yield running
    stop_and_check_log(running)


@pytest.fixture
def image_id() -> str:
    """A fresh id per test, so tests sharing a server never see each other's images."""
    return f"img-{uuid.uuid4().hex[:12]}"
