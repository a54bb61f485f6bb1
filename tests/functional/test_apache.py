"""What only the Apache deployment (deploy/apache) promises: cache hits served by Apache without Python,
with the validators pymager itself would send; writes behind a password; one generation per miss across
the mod_wsgi daemon processes. The HTTP contract itself runs against Apache in test_api.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests import images
from tests.conftest import sqlite_url
from tests.functional import apache
from tests.functional.conftest import (
    APACHE_CACHE_CONTROL_DERIVED,
    Server,
    all_at_once,
    assert_problem,
    start_server,
    upload,
    write_config,
)

VALIDATORS = ("ETag", "Last-Modified", "Content-Type", "Content-Length", "Cache-Control")


def python_counts(server: Server) -> tuple[float, float, float]:
    """(hits, fresh generations served, generations) as counted by the application's processes."""
    return (
        server.metric("pymager_derived_served_total", source="disk"),
        server.metric("pymager_derived_served_total", source="generated"),
        server.metric("pymager_derived_generated_total"),
    )


def served_per_process(metrics_directory: Path, scratch: Path) -> dict[str, float]:
    """Derived images served by each mod_wsgi daemon process (pid → count), from its own metric files."""
    served: dict[str, float] = {}
    for values in metrics_directory.glob("counter_*.db"):
        pid = values.stem.removeprefix("counter_")
        alone = scratch / pid
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(values, alone / values.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        served[pid] = sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "pymager_derived_served_total"
        )
    return served


@pytest.fixture
def standalone_twin(apache_server: Server, tmp_path: Path) -> Iterator[Server]:
    """A standalone server on the Apache server's registry and data directory: Python serving the very
    files Apache serves."""
    twin = start_server(
        tmp_path / "twin",
        apache_server.database_url,
        data_directory=apache_server.data_directory,
        cache_control_derived=APACHE_CACHE_CONTROL_DERIVED,
    )
    yield twin
    twin.stop()
    assert "Traceback" not in twin.log_path.read_text()


@pytest.mark.apache
def test_a_range_of_a_cached_image_is_answered_by_the_application(
    apache_server: Server, image_id: str
) -> None:
    """So that ranges get pymager's answers hit or miss: Apache's own 416 is an HTML page without
    Content-Range, and it answers several ranges with multipart/byteranges."""
    assert upload(apache_server, image_id, images.jpeg(300, 200)).status_code == 201
    url = apache_server.url(f"/derived/{image_id}-60x40.png")
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200
    hits, generated, generations = python_counts(apache_server)

    partial = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
    several = requests.get(url, headers={"Range": "bytes=0-1,4-5"}, timeout=10)
    beyond = requests.get(url, headers={"Range": f"bytes={len(whole.content)}-"}, timeout=10)
    legacy = requests.get(url, headers={"Request-Range": "bytes=0-9"}, timeout=10)  # Apache honours it

    assert python_counts(apache_server) == (hits + 4, generated, generations)
    assert legacy.status_code == 200
    assert legacy.content == whole.content
    assert partial.status_code == 206
    assert partial.content == whole.content[:10]
    assert partial.headers["Content-Range"] == f"bytes 0-9/{len(whole.content)}"
    assert several.status_code == 200
    assert several.content == whole.content
    assert_problem(beyond, 416)
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole.content)}"


@pytest.mark.apache
def test_apache_and_python_send_the_same_validators_for_a_derived_file(
    apache_server: Server, standalone_twin: Server, image_id: str
) -> None:
    assert upload(apache_server, image_id, images.jpeg(120, 90)).status_code == 201
    path = f"/derived/{image_id}-30x20.jpeg"
    assert requests.get(apache_server.url(path), timeout=30).status_code == 200
    # Apache marks the ETag of a file written within the last second weak; an hour-old file (with a
    # sub-second mtime, as real files have) shows the validators both servers send from then on.
    stored = apache_server.data_directory / "derived" / image_id / "30x20.jpg"
    an_hour_ago = time.time_ns() - 3_600_123_456_789
    os.utime(stored, ns=(an_hour_ago, an_hour_ago))

    from_apache = requests.get(apache_server.url(path), timeout=10)
    from_python = requests.get(standalone_twin.url(path), timeout=10)

    assert from_apache.content == from_python.content == stored.read_bytes()
    assert {name: from_apache.headers[name] for name in VALIDATORS} == {
        name: from_python.headers[name] for name in VALIDATORS
    }
    assert not from_apache.headers["ETag"].startswith("W/")
    for server in (apache_server, standalone_twin):
        etag_from_the_other = (from_python if server is apache_server else from_apache).headers["ETag"]
        revalidated = requests.get(
            server.url(path), headers={"If-None-Match": etag_from_the_other}, timeout=10
        )
        assert revalidated.status_code == 304
        assert revalidated.headers["ETag"] == etag_from_the_other
        assert revalidated.headers["Cache-Control"] == APACHE_CACHE_CONTROL_DERIVED
        since = {"If-Modified-Since": from_apache.headers["Last-Modified"]}
        assert requests.get(server.url(path), headers=since, timeout=10).status_code == 304


@pytest.mark.apache
def test_writes_need_the_password_and_reads_do_not(apache_server: Server, image_id: str) -> None:
    url = apache_server.url(f"/original/{image_id}")
    data = images.png(20, 20)

    anonymous = upload(apache_server, image_id, data, auth=None, timeout=10)
    wrong = upload(apache_server, image_id, data, auth=(apache.USER, "guess"), timeout=10)
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert apache_server.leaves_nothing(image_id)

    assert upload(apache_server, image_id, data).status_code == 201
    assert requests.delete(url, timeout=10).status_code == 401
    assert requests.get(url, timeout=10).content == data
    assert requests.get(apache_server.url(f"/derived/{image_id}-5x5.png"), timeout=30).status_code == 200
    assert requests.put(url, timeout=10).status_code == 405  # only POST and DELETE are guarded
    # Around the path: /original itself, a doubled slash, the id in the query string.
    for sneaky in ("/original", f"/original?image_id={image_id}", f"//original/{image_id}"):
        assert requests.delete(apache_server.url(sneaky), timeout=10).status_code == 401, sneaky
    assert requests.get(url, timeout=10).content == data
    assert requests.delete(url, auth=apache_server.auth, timeout=10).status_code == 204
    assert apache_server.leaves_nothing(image_id)


@pytest.mark.apache
def test_cold_miss_generates_once_across_the_daemon_processes(
    apache_server: Server, image_id: str, tmp_path: Path
) -> None:
    assert apache_server.metrics_directory is not None
    assert upload(apache_server, image_id, images.jpeg(2400, 1800)).status_code == 201
    generated_before = apache_server.metric("pymager_derived_generated_total")
    served_before = served_per_process(apache_server.metrics_directory, tmp_path / "before")
    url = apache_server.url(f"/derived/{image_id}-345x123.png")
    count = 3 * apache.THREADS  # more than one daemon process can take at once
    responses = all_at_once(count, lambda _: requests.get(url, timeout=60))

    assert [response.status_code for response in responses] == [200] * count
    assert len({response.content for response in responses}) == 1
    assert apache_server.metric("pymager_derived_generated_total") - generated_before == 1
    assert apache_server.rows(image_id) == (1, 1)
    served_after = served_per_process(apache_server.metrics_directory, tmp_path / "after")
    busy = [pid for pid, served in served_after.items() if served > served_before.get(pid, 0.0)]
    assert len(busy) == apache.PROCESSES, f"requests reached only the daemon processes {busy}"


def render(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(apache.RENDER), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rendered_site_takes_data_directory_and_cache_control_from_pymager_ini(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "pymager.ini",
        tmp_path / "data",
        sqlite_url(tmp_path / "r.sqlite3"),
        8000,
        cache_control_derived="public, max-age=31536000, immutable",
    )
    result = render(config)
    assert result.returncode == 0, result.stderr
    assert 'Header set Cache-Control "public, max-age=31536000, immutable"' in result.stdout
    assert f'RewriteCond "{tmp_path / "data"}/derived/$1/$2.png" -f' in result.stdout
    assert "@" not in result.stdout.replace("@…@", "")  # every placeholder filled
    assert "\nDefine PYMAGER_API_KEYS" not in result.stdout  # Basic auth guards writes


def test_rendered_site_passes_bearer_keys_to_the_application_when_api_keys_are_set(tmp_path: Path) -> None:
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", sqlite_url(Path("r.sqlite3")), 8000)
    with config.open("a", encoding="utf-8") as ini:
        ini.write(f"[auth]\napi_keys = sha256:{'ab' * 32}\n")
    result = render(config)
    assert result.returncode == 0, result.stderr
    assert "\nDefine PYMAGER_API_KEYS\n" in result.stdout


def test_rendering_refuses_a_data_directory_apache_would_misread(tmp_path: Path) -> None:
    config = write_config(tmp_path / "pymager.ini", tmp_path / "my data", sqlite_url(Path("r.sqlite3")), 8000)
    result = render(config)
    assert result.returncode == 2
    assert "data_directory" in result.stderr
