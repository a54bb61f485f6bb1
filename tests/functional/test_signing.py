"""Signed derived URLs against real servers (standalone on SQLite and PostgreSQL, and behind Apache,
which serves hits itself): with ``[auth] url_keys`` set, a miss generates only for a valid signature of
the path as sent; a hit is served to anyone; the path alone stays the stored name."""

from __future__ import annotations

import http.client
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from pymager.signing import UrlKey, UrlSigner, mac
from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import (
    SERVER_KINDS,
    Server,
    assert_problem,
    log_text,
    run_pymager,
    start_kind,
    start_server,
    stop_and_check_log,
    upload,
)

NEW = UrlKey("new-2026", b"a fresh secret of the new key")
OLD = UrlKey("old-2025", b"the secret of the key being retired")
SECRETS = (NEW.secret.decode(), OLD.secret.decode())
URL_KEYS = ", ".join(f"{key.key_id}:{key.secret.decode()}" for key in (NEW, OLD))
ALLOWED_SIZES = "10x10, 12x12, 14x14, 16x16, 18x18, 20x20"


@pytest.fixture(scope="module", params=SERVER_KINDS)
def signing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose derived misses need a signature by one of two keys (the new one signs)."""
    directory = tmp_path_factory.mktemp(f"server-signing-{request.param}")
    extra = {"auth.url_keys": URL_KEYS, "allowed_sizes": ALLOWED_SIZES}
    running = start_kind(request, directory, **extra)
    yield running
    stop_and_check_log(running)
    log = log_text(running.log_path)
    assert not any(secret in log for secret in SECRETS)


@pytest.fixture
def uploaded(signing: Server, image_id: str) -> str:
    assert upload(signing, image_id, images.jpeg(64, 48)).status_code == 201
    return image_id


def sign(path: str, key: UrlKey = NEW) -> str:
    return f"{path}?s={key.key_id}.{mac(key.secret, path)}"


def get(server: Server, target: str, method: str = "GET") -> requests.Response:
    return requests.request(method, server.url(target), timeout=60)


def raw_get(server: Server, target: str) -> tuple[int, bytes]:
    """A GET of exactly ``target`` (``requests`` may normalise a path's percent-encoding)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def derived_names(server: Server, image_id: str) -> list[str]:
    """The derived images of ``image_id`` stored, wherever the server stores them (not its traits)."""
    return server.derived_names(image_id, "[!.]*")


def generated_nothing(server: Server, image_id: str) -> bool:
    return (
        server.rows(image_id) == (1, 0)
        and not derived_names(server, image_id)
        and not server.temporary_files()
    )


@pytest.mark.parametrize("key", [NEW, OLD], ids=["new-key", "old-key"])
def test_a_signed_miss_generates_under_its_path_alone(signing: Server, uploaded: str, key: UrlKey) -> None:
    response = get(signing, sign(f"/derived/{uploaded}-10x10.png", key))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (10, 10)
    assert signing.rows(uploaded) == (1, 1)
    assert derived_names(signing, uploaded) == ["10x10.png"]  # no trace of the signature


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("", "signature-required"),
        ("?w=1", "signature-required"),
        ("?s=", "signature-malformed"),
        ("?s=new-2026.garbled!", "signature-malformed"),
        ("?s={s}=", "signature-malformed"),  # padded
        ("?s={s}&s={s}", "signature-malformed"),
        ("?s=gone-2024.{mac}", "signature-key-unknown"),
        ("?s=new-2026.{other}", "signature-invalid"),
        ("?s=old-2025.{mac}", "signature-invalid"),  # the new key's mac under the old key's id
    ],
    ids=[
        "absent",
        "other-parameter",
        "empty",
        "garbled",
        "padded",
        "twice",
        "unknown-key",
        "other-path",
        "wrong-key",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_miss_without_a_valid_signature_is_forbidden_and_creates_nothing(
    signing: Server, uploaded: str, query: str, problem: str, method: str
) -> None:
    path = f"/derived/{uploaded}-10x10.png"
    signature = sign(path).partition("?s=")[2]
    target = path + query.format(s=signature, mac=mac(NEW.secret, path), other=mac(NEW.secret, path + "x"))
    response = get(signing, target, method)
    if method == "HEAD":
        assert response.status_code == 403
        assert response.headers["Content-Type"] == "application/problem+json"
    else:
        assert_problem(response, 403, problem=problem)
    assert response.headers["Cache-Control"] == "no-store"  # a later signed request must not meet it
    assert generated_nothing(signing, uploaded)


def test_a_hit_is_served_to_anyone_signed_or_not(signing: Server, uploaded: str) -> None:
    path = f"/derived/{uploaded}-12x12.png"
    made = get(signing, sign(path))
    assert made.status_code == 200
    served_by_python = signing.metric("pymager_derived_served_total", source="disk")
    for target in (path, f"{path}?s=garbage", f"{path}?s=gone-2024.{mac(NEW.secret, path)}", sign(path, OLD)):
        response = get(signing, target)
        assert response.status_code == 200, (target, response.text)
        assert response.content == made.content
    python_hits = signing.metric("pymager_derived_served_total", source="disk") - served_by_python
    assert python_hits == (0 if signing.behind_front else 4)  # behind Apache or nginx, they served them
    assert signing.rows(uploaded) == (1, 1)


def test_the_signature_is_checked_before_the_size_and_the_original(signing: Server, uploaded: str) -> None:
    assert_problem(get(signing, f"/derived/{uploaded}-40x40.png"), 403, problem="signature-required")
    assert_problem(get(signing, f"/derived/{uploaded}-9999x10.png"), 403, problem="signature-required")
    assert_problem(get(signing, "/derived/no-such-image-10x10.png"), 403, problem="signature-required")
    assert_problem(get(signing, sign(f"/derived/{uploaded}-40x40.png")), 403, problem="size-not-allowed")
    assert_problem(get(signing, sign("/derived/no-such-image-10x10.png")), 404, problem="image-not-found")
    assert generated_nothing(signing, uploaded)


def test_the_grammar_is_checked_before_the_signature(signing: Server, uploaded: str) -> None:
    assert_problem(get(signing, f"/derived/{uploaded}-10x10"), 404, problem="invalid-derived-spec")
    assert_problem(get(signing, f"/derived/{uploaded}-10x10.bmp"), 400, problem="unknown-format")


def test_the_path_is_signed_exactly_as_sent(signing: Server, uploaded: str) -> None:
    """``-`` sent as ``%2D`` is the same image but another path: its signature is its own."""
    plain = f"/derived/{uploaded}-14x14.png"
    encoded = plain.replace("-14x14", "%2D14x14")
    assert raw_get(signing, f"{encoded}?s={sign(plain).partition('?s=')[2]}")[0] == 403
    assert generated_nothing(signing, uploaded)
    status, body = raw_get(signing, sign(encoded))
    assert status == 200, body
    assert derived_names(signing, uploaded) == ["14x14.png"]
    assert get(signing, plain).status_code == 200  # stored: a hit, public


def test_other_parameters_beside_the_signature_are_ignored(signing: Server, uploaded: str) -> None:
    path = f"/derived/{uploaded}-16x16.png"
    signature = sign(path).partition("?")[2]
    assert get(signing, f"{path}?dpr=2&{signature}&utm_source=mail").status_code == 200
    assert derived_names(signing, uploaded) == ["16x16.png"]


def test_other_routes_still_ignore_the_query_string(signing: Server, uploaded: str) -> None:
    assert get(signing, f"/original/{uploaded}?s=garbage").status_code == 200
    assert get(signing, "/health?s=garbage").status_code == 200


def test_the_sign_command_signs_with_the_first_key(signing: Server, uploaded: str) -> None:
    path = f"/derived/{uploaded}-18x18.png"
    result = signing.run_tool("--sign", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sign(path, NEW)
    assert get(signing, result.stdout.strip()).status_code == 200


# -- rotation and the environment ------------------------------------------------------------------


def test_the_environment_replaces_the_configured_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_id: str
) -> None:
    """The file still lists only the old key; the environment, which wins, only the new one."""
    monkeypatch.setenv("PYMAGER_URL_KEYS", f"{NEW.key_id}:{NEW.secret.decode()}")
    server = start_server(
        tmp_path,
        sqlite_url(tmp_path / "registry.sqlite3"),
        **{"auth.url_keys": f"{OLD.key_id}:{OLD.secret.decode()}"},
    )
    try:
        assert upload(server, image_id, images.jpeg(32, 32)).status_code == 201
        old = get(server, sign(f"/derived/{image_id}-10x10.png", OLD))
        assert_problem(old, 403, "'old-2025'", problem="signature-key-unknown")
        assert get(server, sign(f"/derived/{image_id}-10x10.png", NEW)).status_code == 200
    finally:
        stop_and_check_log(server)
    log = log_text(server.log_path)
    assert "url keys new-2026" in log
    assert not any(secret in log for secret in SECRETS)


def _config(directory: Path, url_keys: str) -> Path:
    path = directory / "pymager.ini"
    path.write_text(f"[pymager]\ndata_directory = data\n[auth]\nurl_keys = {url_keys}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("url_keys", "named"),
    [
        (f"{NEW.key_id}:{NEW.secret.decode()}, weak:hunter2-short", "key 'weak'"),
        ("a-pasted-secret-without-any-id", "entry 1"),
        (f"bad id:{NEW.secret.decode()}", "entry 1"),
    ],
)
def test_a_bad_url_key_stops_start_up_with_one_line_without_the_secret(
    tmp_path: Path, url_keys: str, named: str
) -> None:
    result = run_pymager("--config", str(_config(tmp_path, url_keys)))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert "[auth] url_keys = <redacted> is invalid" in message
    assert named in message
    for secret in ("hunter2-short", "a-pasted-secret", NEW.secret.decode()):
        assert secret not in result.stderr + result.stdout


def test_a_bad_url_key_in_the_environment_stops_start_up_too(tmp_path: Path) -> None:
    env = {**os.environ, "PYMAGER_URL_KEYS": "weak:hunter2-short"}
    result = run_pymager("--config", str(_config(tmp_path, "")), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "pymager: $PYMAGER_URL_KEYS = <redacted> is invalid: "
        "the secret of key 'weak' is shorter than 16 bytes"
    )


def test_the_sign_command_prints_the_readme_test_vector(tmp_path: Path) -> None:
    result = run_pymager(
        "--config",
        str(_config(tmp_path, "web-2026:pymager-test-vector-secret")),
        "--sign",
        "/derived/sample-200x200-fit.webp",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "/derived/sample-200x200-fit.webp?s=web-2026.tKrKwbksI6_krzpOsWotfC09enYaKjwDLUSntyh9574\n"
    )
    assert result.stdout.strip() == UrlSigner([UrlKey("web-2026", b"pymager-test-vector-secret")]).sign(
        "/derived/sample-200x200-fit.webp"
    )


@pytest.mark.parametrize(
    ("url_keys", "path", "message"),
    [
        ("", "/derived/a-10x10.png", "no url key to sign with"),
        (f"{NEW.key_id}:{NEW.secret.decode()}", "/original/a", "sign a path as it is requested"),
        (f"{NEW.key_id}:{NEW.secret.decode()}", "/derived/a-10x10.png?s=x", "sign a path as it is requested"),
    ],
)
def test_the_sign_command_refuses_what_it_cannot_sign(
    tmp_path: Path, url_keys: str, path: str, message: str
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYMAGER_URL_KEYS"}
    result = run_pymager("--config", str(_config(tmp_path, url_keys)), "--sign", path, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
