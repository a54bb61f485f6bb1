"""What only the nginx deployment (deploy/nginx) promises: cache hits and auto hits served by nginx
without Python, with the validators pymager itself sends for the same file; ranges and everything
else answered by the application; writes behind a password; slow clients held by nginx, not by the
application. The HTTP contract itself runs behind nginx in test_api.py, test_modes.py,
test_auto_format.py and the other tests of the ``server`` fixture."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import images
from tests.browsers import BROWSERS
from tests.conftest import sqlite_url
from tests.functional import apache, nginx
from tests.functional.conftest import (
    FRONT_CACHE_CONTROL_DERIVED,
    MAX_UPLOAD_BYTES,
    Server,
    assert_problem,
    start_nginx,
    upload,
    write_config,
)
from tests.functional.slowloris import SlowClients
from tests.functional.test_apache import VALIDATORS, python_counts
from tests.functional.test_auto_format import get_auto

SLOW_CONNECTIONS = 200
# Under the site's client_header_timeout (20 s): a normal request answered within this did not wait
# for a slow connection to be cut off.
NORMAL_REQUEST_DEADLINE = 10.0


def app_of(server: Server) -> Server:
    """The standalone server behind nginx: Python serving the very files nginx serves."""
    assert server.app is not None
    return server.app


@pytest.mark.nginx
def test_nginx_never_serves_temporary_trash_or_traits_files(nginx_server: Server, image_id: str) -> None:
    """Names a derived URL could be mistaken for on disk reach the application, which knows them not."""
    assert upload(nginx_server, image_id, images.jpeg(64, 48)).status_code == 201
    directory = nginx_server.data_directory / "derived" / image_id
    assert requests.get(nginx_server.url(f"/derived/{image_id}-30x20.auto"), timeout=30).status_code == 200
    assert (directory / ".traits-opaque").is_file()
    planted = [directory / name for name in (".tmp-x", ".trash-x", "30x20.jpg.tmp")]
    for path in planted:
        path.write_bytes(b"not for anyone")
    try:
        for target in (
            f"/derived/{image_id}/.tmp-x",
            f"/derived/{image_id}/.traits-opaque",
            f"/derived/{image_id}/30x20.jpg",
            f"/derived/{image_id}-30x20.jpg.tmp",
            f"/derived/{image_id}-.tmp-x",
        ):
            response = requests.get(nginx_server.url(target), timeout=10)
            assert response.status_code in (400, 404), target  # an unknown extension is a 400
            assert response.headers["Content-Type"] == "application/problem+json", target
            assert b"not for anyone" not in response.content
    finally:  # the shared server's other tests check that no temporary file is left
        for path in planted:
            path.unlink()


@pytest.mark.nginx
def test_nginx_sends_ranges_and_other_methods_to_the_application(nginx_server: Server, image_id: str) -> None:
    """So that ranges get pymager's answers hit or miss (nginx's own 416 is an HTML page, and it
    answers several ranges with multipart/byteranges), and other methods pymager's 405."""
    assert upload(nginx_server, image_id, images.jpeg(300, 200)).status_code == 201
    url = nginx_server.url(f"/derived/{image_id}-60x40.png")
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200
    hits, generated, generations = python_counts(nginx_server)

    partial = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
    several = requests.get(url, headers={"Range": "bytes=0-1,4-5"}, timeout=10)
    beyond = requests.get(url, headers={"Range": f"bytes={len(whole.content)}-"}, timeout=10)
    posted = requests.post(url, data=b"x", timeout=10)

    assert python_counts(nginx_server) == (hits + 3, generated, generations)
    assert partial.status_code == 206
    assert partial.content == whole.content[:10]
    assert partial.headers["Content-Range"] == f"bytes 0-9/{len(whole.content)}"
    assert several.status_code == 200
    assert several.content == whole.content
    assert_problem(beyond, 416)
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole.content)}"
    assert_problem(posted, 405)
    assert posted.headers["Allow"] == "GET, HEAD"


@pytest.mark.nginx
def test_nginx_and_python_send_the_same_validators_for_a_derived_file(
    nginx_server: Server, image_id: str
) -> None:
    python = app_of(nginx_server)
    assert upload(nginx_server, image_id, images.jpeg(120, 90)).status_code == 201
    path = f"/derived/{image_id}-30x20.jpeg"
    assert requests.get(nginx_server.url(path), timeout=30).status_code == 200
    # An hour-old file with a sub-second mtime, as real files have: nginx's ETag counts whole seconds.
    stored = nginx_server.data_directory / "derived" / image_id / "30x20.jpg"
    an_hour_ago = time.time_ns() - 3_600_123_456_789
    os.utime(stored, ns=(an_hour_ago, an_hour_ago))
    before = python_counts(nginx_server)

    from_nginx = requests.get(nginx_server.url(path), timeout=10)
    assert python_counts(nginx_server) == before  # really nginx's answer
    from_python = requests.get(python.url(path), timeout=10)

    assert from_nginx.content == from_python.content == stored.read_bytes()
    assert {name: from_nginx.headers[name] for name in VALIDATORS} == {
        name: from_python.headers[name] for name in VALIDATORS
    }
    assert from_nginx.headers["ETag"] == f'"{an_hour_ago // 10**9:x}-{stored.stat().st_size:x}"'
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    for server in (nginx_server, python):
        etag_from_the_other = (from_python if server is nginx_server else from_nginx).headers["ETag"]
        revalidated = requests.get(
            server.url(path), headers={"If-None-Match": etag_from_the_other}, timeout=10
        )
        assert revalidated.status_code == 304
        assert revalidated.headers["ETag"] == etag_from_the_other
        assert revalidated.headers["Cache-Control"] == FRONT_CACHE_CONTROL_DERIVED
        assert (
            requests.get(server.url(path), headers={"If-None-Match": '"other"'}, timeout=10).status_code
            == 200
        )
        for since, status in ((from_nginx.headers["Last-Modified"], 304), (earlier, 200)):
            answer = requests.get(server.url(path), headers={"If-Modified-Since": since}, timeout=10)
            assert answer.status_code == status, (server.base_url, since)
        later = requests.get(
            server.url(path), headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, timeout=10
        )
        assert later.status_code == 304  # any date not older than the file, not only its own
    ranged = requests.get(nginx_server.url(path), headers={"Range": "bytes=2-5"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.headers["ETag"] == from_nginx.headers["ETag"]
    assert ranged.content == from_nginx.content[2:6]


@pytest.mark.nginx
def test_nginx_leaves_an_auto_url_to_the_application_until_the_chosen_file_exists(
    nginx_server: Server, image_id: str
) -> None:
    assert upload(nginx_server, image_id, images.jpeg(64, 48)).status_code == 201
    segment = f"{image_id}-30x20.auto"
    assert get_auto(nginx_server, segment, "image/webp").headers["Content-Type"] == "image/webp"
    generations = nginx_server.metric("pymager_derived_generated_total")

    # The traits are published and the WebP exists; the AVIF a Chrome earns does not, yet.
    chrome = get_auto(nginx_server, segment, BROWSERS["chrome"].accept)

    assert chrome.status_code == 200
    assert chrome.headers["Content-Type"] == "image/avif"
    assert nginx_server.metric("pymager_derived_generated_total") == generations + 1


@pytest.mark.nginx
def test_nginx_asks_for_the_password_on_writes_only(nginx_server: Server, image_id: str) -> None:
    url = nginx_server.url(f"/original/{image_id}")
    data = images.png(20, 20)

    anonymous = upload(nginx_server, image_id, data, auth=None, timeout=10)
    wrong = upload(nginx_server, image_id, data, auth=(apache.USER, "guess"), timeout=10)
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert nginx_server.leaves_nothing(image_id)

    assert upload(nginx_server, image_id, data).status_code == 201
    assert requests.delete(url, timeout=10).status_code == 401
    assert requests.get(url, timeout=10).content == data
    assert requests.get(nginx_server.url(f"/derived/{image_id}-5x5.png"), timeout=30).status_code == 200
    assert_problem(requests.put(url, timeout=10), 405)  # only POST and DELETE are guarded
    # Around the path: /original itself, a doubled slash, the id in the query string, an escape.
    for sneaky in (
        "/original",
        f"/original?image_id={image_id}",
        f"//original/{image_id}",
        f"/%6Friginal/{image_id}",
    ):
        assert requests.delete(nginx_server.url(sneaky), timeout=10).status_code == 401, sneaky
    assert requests.get(url, timeout=10).content == data
    assert requests.delete(url, auth=nginx_server.auth, timeout=10).status_code == 204
    assert nginx_server.leaves_nothing(image_id)


@pytest.mark.nginx
def test_nginx_refuses_a_body_over_pymagers_limit_with_pymagers_problem(
    nginx_server: Server, image_id: str
) -> None:
    """A Content-Length beyond max_upload_bytes and the multipart allowance never reaches the app."""
    body = b"\0" * (MAX_UPLOAD_BYTES + 64 * 1024 + 1)
    response = requests.post(
        nginx_server.url(f"/original/{image_id}"),
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
        auth=nginx_server.auth,
        timeout=30,
    )
    assert_problem(response, 413, problem="upload-too-large")
    assert response.headers["Cache-Control"] == "no-store"
    assert nginx_server.leaves_nothing(image_id)


@pytest.mark.nginx
def test_nginx_answers_a_normal_request_while_200_slow_connections_are_open(nginx_server: Server) -> None:
    """A slowloris costs nginx a connection and no thread of anyone's: with 200 of them open, a hit
    and a request through to the application (/health) are answered, without waiting for
    client_header_timeout to cut one off. Then nginx closes every one of them (20 s for the headers)."""
    image_id = f"slowloris-{os.urandom(6).hex()}"
    assert upload(nginx_server, image_id, images.jpeg()).status_code == 201
    hit = nginx_server.url(f"/derived/{image_id}-10x10.jpg")
    assert requests.get(hit, timeout=60).status_code == 200  # generated: nginx serves it from now on
    port = int(nginx_server.base_url.rsplit(":", 1)[1])
    with SlowClients(port, SLOW_CONNECTIONS, interval=2.0, limit=90) as slow:
        assert len(slow.still_open()) == SLOW_CONNECTIONS
        assert requests.get(hit, timeout=NORMAL_REQUEST_DEADLINE).status_code == 200
        health = requests.get(nginx_server.url("/health"), timeout=NORMAL_REQUEST_DEADLINE)
        assert health.status_code == 200
        assert len(slow.still_open()) == SLOW_CONNECTIONS  # answered while they all were open
        ends = time.monotonic() + 60  # 20 s, the site's client_header_timeout, and slack
        while slow.still_open() and time.monotonic() < ends:
            time.sleep(0.5)  # polling the slow connections, bounded by the deadline above
        assert not slow.still_open(), "client_header_timeout left slow connections open"
    assert requests.get(hit, timeout=NORMAL_REQUEST_DEADLINE).status_code == 200


@pytest.mark.nginx
def test_nginx_answers_pymagers_503_problem_while_the_application_is_down(tmp_path: Path) -> None:
    front = start_nginx(tmp_path / "down")
    try:
        app_of(front).stop()
        response = requests.get(front.url("/health"), timeout=30)
    finally:
        front.app = None  # stopped above
        front.stop()
    assert_problem(response, 503, problem="service-unavailable")
    assert response.headers["Retry-After"] == "5"


# -- rendering ------------------------------------------------------------------------------------


def render(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(nginx.RENDER), "--config", str(config), *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def nginx_ini(tmp_path: Path, **extra: object) -> Path:
    return write_config(
        tmp_path / "pymager.ini", tmp_path / "data", sqlite_url(tmp_path / "r.sqlite3"), 8123, **extra
    )


def test_rendered_nginx_site_takes_its_values_from_pymager_ini(tmp_path: Path) -> None:
    config = nginx_ini(
        tmp_path, etag_style="nginx", cache_control_derived="public, max-age=31536000, immutable"
    )
    result = render(config)
    assert result.returncode == 0, result.stderr
    assert 'add_header Cache-Control "public, max-age=31536000, immutable";' in result.stdout
    assert f'root "{tmp_path / "data"}";' in result.stdout
    assert "server 127.0.0.1:8123;" in result.stdout
    assert f"client_max_body_size {MAX_UPLOAD_BYTES + 64 * 1024};" in result.stdout
    assert 'POST "pymager";' in result.stdout  # Basic auth guards writes
    assert 'proxy_set_header Authorization "";' in result.stdout  # and the password stays in nginx
    assert "@" not in result.stdout.replace("@…@", "").replace("@pymager", "")  # every placeholder filled


def test_rendered_nginx_site_passes_keys_to_the_application_when_api_keys_are_set(tmp_path: Path) -> None:
    config = nginx_ini(tmp_path, etag_style="nginx", **{"auth.api_keys": f"sha256:{'ab' * 32}"})
    result = render(config)
    assert result.returncode == 0, result.stderr
    assert 'POST "off";' in result.stdout
    assert 'proxy_set_header Authorization "$http_authorization";' in result.stdout


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({}, "etag_style"),  # apache, the default: pymager's ETags would not be nginx's
        ({"etag_style": "nginx", "cache_control_derived": "max-age=$x"}, "cache_control_derived"),
        ({"etag_style": "nginx", "server.host": "0.0.0.0"}, "host"),
    ],
    ids=["etag-style-apache", "dollar-in-cache-control", "app-not-on-loopback"],
)
def test_rendering_the_nginx_site_refuses_what_would_disagree_or_misread(
    tmp_path: Path, extra: dict[str, object], named: str
) -> None:
    result = render(nginx_ini(tmp_path, **extra))
    assert result.returncode == 2
    assert named in result.stderr
    assert result.stdout == ""


def test_rendering_the_apache_site_refuses_nginx_etags(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(apache.RENDER), "--config", str(nginx_ini(tmp_path, etag_style="nginx"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "etag_style" in result.stderr
