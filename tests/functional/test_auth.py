"""Write access control: with ``[auth] api_keys`` set, POST and DELETE need a key, sent as Bearer or as
the password of Basic (pymager's 2011 Java client knows only Basic, and sends it once challenged);
reads stay public; the configuration holds only hashes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pymager.config import ConfigError, hash_api_key, load_settings
from tests import images
from tests.functional.conftest import (
    Server,
    assert_problem,
    log_text,
    run_pymager,
    start_kind,
    stop_and_check_log,
    upload,
)

KEY = "correct-horse-battery-staple"
OTHER_KEY = "second key for the backup job"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("standalone", id="standalone"),
        pytest.param("apache", id="apache", marks=pytest.mark.apache),
    ],
)
def locked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose writes need one of two API keys: standalone, and behind the shipped Apache site,
    which must then pass the Authorization header on (``WSGIPassAuthorization``) and ask for nothing
    itself."""
    directory = tmp_path_factory.mktemp(f"server-auth-{request.param}")
    keys = {"auth.api_keys": f"{hash_api_key(KEY)}, {hash_api_key(OTHER_KEY)}"}
    running = start_kind(request, directory, **keys)
    yield running
    stop_and_check_log(running)
    assert KEY not in log_text(running.log_path)


@pytest.fixture
def new_id() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(server: Server, image_id: str, headers: dict[str, str] | None = None) -> requests.Response:
    """An upload that sends only ``headers`` for credentials."""
    return upload(server, image_id, images.jpeg(20, 20), headers=headers, auth=None, timeout=30)


def assert_unauthorized(response: requests.Response, detail: str) -> None:
    assert_problem(response, 401, re.escape(detail), problem="unauthorized")
    # Two challenges, each its own header line: clients that read one scheme per line find theirs.
    challenges = response.raw.headers.getlist("WWW-Authenticate")
    assert challenges == ['Bearer realm="pymager"', 'Basic realm="pymager"']


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        (None, "Authorization: Bearer"),
        (bearer("wrong key"), "not valid"),
        (bearer(hash_api_key(KEY)), "not valid"),  # the stored hash is not a key
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not valid"),  # user:pass, and pass is no key
        ({"Authorization": "Basic bm8tcGFzc3dvcmQ="}, "Authorization: Bearer"),  # no colon, no password
        ({"Authorization": "Bearer"}, "Authorization: Bearer"),
        ({"Authorization": f"Bearer {KEY}x"}, "not valid"),
    ],
    ids=[
        "none",
        "wrong",
        "the-hash",
        "basic-wrong-password",
        "basic-no-password",
        "empty-bearer",
        "key-prefix",
    ],
)
def test_upload_without_a_valid_key_is_unauthorized(
    locked: Server, new_id: str, headers: dict[str, str] | None, detail: str
) -> None:
    assert_unauthorized(post(locked, new_id, headers), detail)
    assert locked.leaves_nothing(new_id)


@pytest.mark.parametrize("key", [KEY, OTHER_KEY])
def test_writes_with_a_valid_key_succeed_and_reads_stay_public(locked: Server, new_id: str, key: str) -> None:
    assert post(locked, new_id, bearer(key)).status_code == 201
    assert requests.get(locked.url(f"/original/{new_id}"), timeout=10).status_code == 200
    assert requests.get(locked.url(f"/derived/{new_id}-10x10.png"), timeout=30).status_code == 200
    assert requests.head(locked.url(f"/original/{new_id}"), timeout=10).status_code == 200
    assert requests.get(locked.url("/health"), timeout=10).status_code == 200
    url = locked.url(f"/original/{new_id}")
    assert_unauthorized(requests.delete(url, timeout=10), "Authorization: Bearer")
    assert locked.rows(new_id) == (1, 1)
    assert requests.delete(url, headers={"Authorization": f"bearer  {key} "}, timeout=10).status_code == 204
    assert locked.leaves_nothing(new_id)


def test_basic_with_the_key_as_password_writes_as_the_2011_client_does(locked: Server, new_id: str) -> None:
    """pymager-java sends nothing until challenged, then HTTP Basic: any user name, the key as password."""
    data = images.jpeg(20, 20)
    challenged = upload(locked, new_id, data, auth=None)
    assert_unauthorized(challenged, "Authorization: Bearer")
    assert upload(locked, new_id, data, auth=("java-client", KEY)).status_code == 201
    assert requests.get(locked.url(f"/original/{new_id}"), timeout=10).content == data
    url = locked.url(f"/original/{new_id}")
    assert requests.delete(url, auth=("anyone", "not the key"), timeout=10).status_code == 401
    assert requests.delete(url, auth=("", OTHER_KEY), timeout=10).status_code == 204
    assert locked.leaves_nothing(new_id)


def test_unauthorized_upload_is_refused_before_its_body_is_parsed(locked: Server, new_id: str) -> None:
    """A megabyte of broken multipart gets 401, not the 400 that parsing it would give."""
    response = requests.post(
        locked.url(f"/original/{new_id}"),
        data=b"--zz\r\n" + b"\xff" * (1024 * 1024),
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
        timeout=30,
    )
    assert_unauthorized(response, "Authorization: Bearer")
    assert locked.leaves_nothing(new_id)
    assert requests.get(locked.url("/health"), timeout=10).status_code == 200


def test_server_without_keys_warns_that_writes_are_open(server: Server) -> None:
    if server.behind_front:
        pytest.skip("the front server (Apache, nginx) guards writes with its own credentials")
    assert "writes are open to anyone" in server.log_path.read_text()


def test_server_with_keys_does_not_warn(locked: Server) -> None:
    log = locked.log_path.read_text()
    assert "writes are open" not in log
    if not locked.behind_apache:  # under mod_wsgi only warnings and errors reach Apache's error log
        assert "need one of 2 API key(s)" in log


# -- configuration --------------------------------------------------------------------------------


def test_api_keys_must_be_hashes_and_are_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "pymager.ini"
    path.write_text(f"[auth]\napi_keys = {KEY}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[auth\] api_keys = <redacted> is invalid") as raised:
        load_settings(path)
    assert KEY not in str(raised.value)


def test_api_keys_accept_several_hashes(tmp_path: Path) -> None:
    path = tmp_path / "pymager.ini"
    path.write_text(f"[auth]\napi_keys = {hash_api_key(KEY)},{hash_api_key(OTHER_KEY).upper()}\n")
    assert load_settings(path).api_keys == {hash_api_key(KEY), hash_api_key(OTHER_KEY)}


def test_hash_key_command_reads_the_key_from_stdin() -> None:
    result = run_pymager("--hash-key", input=f"{KEY}\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hash_api_key(KEY)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("DELETE", "/nothing", 404), ("PUT", "/original/x", 405), ("DELETE", "/derived/x-10x10.jpg", 405)],
)
def test_routes_and_methods_that_do_not_exist_say_so_before_asking_for_a_key(
    locked: Server, method: str, path: str, status: int
) -> None:
    response = requests.request(method, locked.url(path), timeout=10)
    assert response.status_code == status
    assert "WWW-Authenticate" not in response.headers
