"""The ``pymager`` command (``python -m pymager.cli``, what the console script runs): the server-side
subcommands on a configuration, the flags of ``pymager_standalone.py`` it still takes, and the client
subcommands (info, ls, rm, pregenerate) against a real server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pymager.adapters.db import migrate
from pymager.client import Client
from pymager.config import hash_api_key
from pymager.signing import UrlSigner, parse_url_keys
from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import (
    RUN_TIMEOUT,
    Server,
    free_port,
    log_text,
    start_server,
    stop_and_check_log,
    stop_process,
    wait_for_health,
    write_config,
)

KEY = "cli-test-key-0123456789"
URL_KEYS = "cli-1:cli-test-secret-0123456789abc"


def pymager(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``pymager`` command with ``args`` to its end."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PYMAGER_")}
    return subprocess.run(
        [sys.executable, "-m", "pymager.cli", *args],
        input=stdin,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def config_in(directory: Path, **extra: object) -> Path:
    return write_config(
        directory / "pymager.ini",
        directory / "data",
        sqlite_url(directory / "registry.sqlite3"),
        free_port(),
        **extra,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("server-cli")
    running = start_server(
        directory, sqlite_url(directory / "registry.sqlite3"), **{"auth.api_keys": hash_api_key(KEY)}
    )
    yield running
    stop_and_check_log(running)


@pytest.fixture
def stored(server: Server) -> str:
    image_id = f"cli-{uuid.uuid4().hex[:12]}"
    with Client(server.base_url, key=KEY) as client:
        client.upload(image_id, io.BytesIO(images.jpeg(120, 80)))
    return image_id


# Server-side subcommands


def test_cli_hash_key_prints_the_entry_without_a_configuration() -> None:
    result = pymager("hash-key", stdin="correct horse\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{hash_api_key('correct horse')}\n"


def test_cli_migrate_then_serve_answers_health(tmp_path: Path) -> None:
    config = config_in(tmp_path)

    migrated = pymager("migrate", "--config", str(config))
    port = int(
        next(line for line in config.read_text().splitlines() if line.startswith("port")).split("=")[1]
    )
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pymager.cli", "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        stop_process(process)

    assert migrated.returncode == 0, migrated.stderr
    assert f"database at revision {migrate.head_revision()}" in migrated.stdout
    assert "Traceback" not in log_text(log_path)


def test_cli_check_and_repair_a_clean_registry(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    migrate.upgrade(sqlite_url(tmp_path / "registry.sqlite3"))

    checked = pymager("check", "--config", str(config))
    repaired = pymager("repair", "--config", str(config))

    assert checked.returncode == 0, checked.stderr
    assert "0 problem(s) found" in checked.stdout
    assert repaired.returncode == 0, repaired.stderr


def test_cli_sign_prints_the_signed_path(tmp_path: Path) -> None:
    config = config_in(tmp_path, **{"auth.url_keys": URL_KEYS})

    result = pymager("sign", "--config", str(config), "/derived/sample-200x200.jpg")

    assert result.returncode == 0, result.stderr
    assert result.stdout == UrlSigner(parse_url_keys(URL_KEYS)).sign("/derived/sample-200x200.jpg") + "\n"


def test_cli_refuses_a_bad_configuration_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "pymager.ini"
    config.write_text("[pymager]\nmax_dimension = abc\n", encoding="utf-8")

    result = pymager("check", "--config", str(config))

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("pymager:")
    assert "max_dimension" in result.stderr


@pytest.mark.parametrize("args", [["purge-derived"], ["purge-derived", "--all", "some-id"]])
def test_cli_purge_derived_takes_ids_or_all(tmp_path: Path, args: list[str]) -> None:
    result = pymager(*args, "--config", str(config_in(tmp_path)))

    assert result.returncode == 2
    assert "image ids or --all" in result.stderr


def test_cli_purge_derived_removes_derived_images(server: Server, stored: str) -> None:
    assert requests.get(server.url(f"/derived/{stored}-40x40.jpg"), timeout=30).status_code == 200

    result = pymager("purge-derived", "--config", str(server.config_path), stored)

    assert result.returncode == 0, result.stderr
    assert f"purged {stored}-40x40.jpg" in result.stdout
    assert server.rows(stored) == (1, 0)


def test_cli_keeps_the_standalone_flags(tmp_path: Path) -> None:
    config = config_in(tmp_path)

    migrated = pymager("--config", str(config), "--migrate")
    hashed = pymager("--hash-key", stdin="k\n")

    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision" in migrated.stdout
    assert hashed.stdout == f"{hash_api_key('k')}\n"


# Client subcommands


def test_cli_rm_deletes_with_the_key_from_the_environment(server: Server, stored: str) -> None:
    refused = pymager("rm", "--url", server.base_url, stored)
    deleted = pymager(
        "rm", stored, f"{stored}-never", env={"PYMAGER_URL": server.base_url, "PYMAGER_KEY": KEY}
    )

    assert refused.returncode == 1
    assert "401" in refused.stderr
    assert deleted.returncode == 1  # the second id was never stored
    assert f"deleted {stored}\n" == deleted.stdout
    assert "404" in deleted.stderr
    assert server.rows(stored) == (0, 0)


def test_cli_pregenerate_makes_each_size_and_format(server: Server, stored: str) -> None:
    result = pymager(
        "pregenerate", "--url", server.base_url, "--sizes", "50x50,60x0-fit", "--formats", "jpg,webp", stored
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 of 4 derived image(s)" in result.stdout
    names = sorted(path.name for path in (server.data_directory / "derived" / stored).iterdir())
    assert names == ["50x50.jpg", "50x50.webp", "60x0-fit.jpg", "60x0-fit.webp"]


@pytest.mark.parametrize("sizes", ["50", "0x50", "50x50-stretch", ""])
def test_cli_pregenerate_refuses_a_size_outside_the_grammar(server: Server, sizes: str) -> None:
    result = pymager("pregenerate", "--url", server.base_url, "--sizes", sizes, "some-id")

    assert result.returncode == 2
    assert "--sizes" in result.stderr


@pytest.fixture(scope="module")
def listing(server: Server) -> None:
    """Skip while the server has no info route and listing (checked once)."""
    probe = requests.get(server.url("/original/probe-for-the-route/info"), timeout=10)
    if probe.status_code == 404 and probe.json().get("type", "").endswith(":no-such-resource"):
        pytest.skip("the server has no GET /original/<id>/info and GET /original listing yet")


def test_cli_info_prints_the_originals_json(server: Server, stored: str, listing: None) -> None:
    result = pymager("info", "--url", server.base_url, stored)

    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["id"], info["width"], info["height"]) == (stored, 120, 80)


def test_cli_ls_lists_every_original(server: Server, stored: str, listing: None) -> None:
    result = pymager("ls", "--url", server.base_url, "--key", KEY, "--json", "--page", "2")

    assert result.returncode == 0, result.stderr
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert stored in ids
    assert len(ids) == len(set(ids))


def test_cli_pregenerate_all_uses_the_listing(server: Server, stored: str, listing: None) -> None:
    result = pymager("pregenerate", "--url", server.base_url, "--key", KEY, "--sizes", "30x30", "--all")

    assert result.returncode == 0, result.stdout + result.stderr
    assert (server.data_directory / "derived" / stored / "30x30.jpg").is_file()


def test_cli_pregenerate_reports_an_id_outside_the_grammar(server: Server, stored: str) -> None:
    result = pymager("pregenerate", "--url", server.base_url, "--sizes", "20x20", "not an id", stored)

    assert result.returncode == 1
    assert "not an id" in result.stderr
    assert "1 of 2 derived image(s)" in result.stdout


def test_backfill_gives_older_originals_their_copies_and_facts_and_check_calls_them_no_damage(
    tmp_path: Path,
) -> None:
    """An original as an older pymager stored it (no reduced copies, no traits, upright size or
    ThumbHash): ``check`` notes it without failing, ``backfill`` fills it in, and a second run finds
    nothing left to do."""
    config = config_in(tmp_path, reduced_copies="64")
    assert pymager("migrate", "--config", str(config)).returncode == 0
    server = start_server(
        tmp_path / "server",
        sqlite_url(tmp_path / "registry.sqlite3"),
        data_directory=tmp_path / "data",
        reduced_copies="64",
    )
    try:
        assert (
            requests.post(
                server.url("/original/old"),
                files={"file": ("a.png", images.png(300, 200, mode="RGBA"))},
                timeout=30,
            ).status_code
            == 201
        )
    finally:
        stop_and_check_log(server)
    engine_url = sqlite_url(tmp_path / "registry.sqlite3")
    from sqlalchemy import create_engine, text

    engine = create_engine(engine_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE originals SET reduced = NULL, animated = NULL, alpha = NULL, upright_width = NULL,"
                " upright_height = NULL, thumbhash = NULL, colour = NULL"
            )
        )
    engine.dispose()
    for copy in (tmp_path / "data" / "reduced").rglob("*"):
        if copy.is_file():
            copy.unlink()

    checked = pymager("check", "--config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "note: not yet backfilled" in checked.stdout

    filled = pymager("backfill", "--config", str(config))
    assert filled.returncode == 0, filled.stdout + filled.stderr
    assert "1 original(s) backfilled" in filled.stdout
    assert [path.name for path in (tmp_path / "data" / "reduced" / "old").iterdir()] == ["64"]
    again = pymager("backfill", "--config", str(config))
    assert "0 original(s) backfilled" in again.stdout
    checked = pymager("check", "--config", str(config))
    assert (checked.returncode, "note:" in checked.stdout) == (0, False), checked.stdout
