"""Starting ``pymager_standalone.py``: bad configurations stop it with one line, a good one serves."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from pymager.adapters.db import migrate
from tests.conftest import sqlite_url
from tests.functional.conftest import (
    free_port,
    log_text,
    pymager_command,
    run_pymager,
    stop_process,
    wait_for_health,
    write_config,
)

REFUSED_DATABASE = "postgresql+psycopg2://postgres@127.0.0.1:1/x"


def environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYMAGER_CONFIG"}
    env.update(extra)
    return env


def run_standalone(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``pymager_standalone.py`` in ``cwd``; ``env`` defaults to ours without ``PYMAGER_CONFIG``."""
    return run_pymager(*args, cwd=cwd, env=env if env is not None else environment())


def refusal(result: subprocess.CompletedProcess[str], *, only_line: bool = True) -> str:
    """The line a refused start-up printed last, after checking how it refused: exit code 2, no
    traceback and (``only_line``) nothing else on stderr."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    if only_line:
        assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("pymager:"), lines[-1]
    return lines[-1]


def sqlite_config(directory: Path, **extra: object) -> Path:
    """A config in ``directory`` whose registry is the default SQLite file inside ``directory/data``."""
    return write_config(directory / "pymager.ini", directory / "data", "", free_port(), **extra)


def table_names(database_url: str) -> set[str]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# Refused start-ups


def test_startup_refuses_unknown_key(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path, max_dimensions=10)

    line = refusal(run_standalone(tmp_path, "--config", str(config)))

    assert "max_dimensions" in line


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("pymager", "max_dimension", "abc"),
        ("pymager", "jpeg_quality", "101"),
        ("pymager", "allowed_sizes", "10by10"),
        ("pymager", "wait_timeout", "-1"),
        ("server", "port", "70000"),
        ("server", "thread_pool", "0"),
    ],
)
def test_startup_refuses_unparsable_value(tmp_path: Path, section: str, key: str, value: str) -> None:
    config = tmp_path / "pymager.ini"
    config.write_text(f"[{section}]\n{key} = {value}\n", encoding="utf-8")

    line = refusal(run_standalone(tmp_path, "--config", str(config)))

    assert key in line
    assert value in line


def test_startup_refuses_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.ini"

    line = refusal(run_standalone(tmp_path, "--config", str(missing)))

    assert str(missing) in line


def test_startup_refuses_missing_default_config_file(tmp_path: Path) -> None:
    line = refusal(run_standalone(tmp_path))

    assert "pymager.ini" in line


def test_startup_refuses_data_directory_that_cannot_be_created(tmp_path: Path) -> None:
    regular = tmp_path / "regular-file"
    regular.write_bytes(b"")
    data_directory = regular / "data"
    config = write_config(tmp_path / "pymager.ini", data_directory, "", free_port())

    line = refusal(run_standalone(tmp_path, "--config", str(config)))

    assert "data_directory" in line
    assert str(data_directory) in line


def test_migrate_refuses_data_directory_that_cannot_be_created(tmp_path: Path) -> None:
    regular = tmp_path / "regular-file"
    regular.write_bytes(b"")
    data_directory = regular / "data"
    config = write_config(tmp_path / "pymager.ini", data_directory, "", free_port())

    line = refusal(run_standalone(tmp_path, "--config", str(config), "--migrate"))

    assert "data_directory" in line
    assert str(data_directory) in line


def test_startup_refuses_unreachable_database(tmp_path: Path) -> None:
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", REFUSED_DATABASE, free_port())

    line = refusal(run_standalone(tmp_path, "--config", str(config)))

    assert "database_url" in line
    assert REFUSED_DATABASE in line


def test_migrate_refuses_unreachable_database(tmp_path: Path) -> None:
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", REFUSED_DATABASE, free_port())

    line = refusal(run_standalone(tmp_path, "--config", str(config), "--migrate"))

    assert "database_url" in line
    assert REFUSED_DATABASE in line


# Refusals for an unmigrated registry check the last stderr line only; that it is the *only* line is
# pinned separately below, since Alembic's INFO logging currently precedes it.


def test_startup_refuses_sqlite_database_never_migrated(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path)

    line = refusal(run_standalone(tmp_path, "--config", str(config)), only_line=False)

    assert "database_url" in line
    assert "--migrate" in line


def test_startup_refusal_for_unmigrated_database_is_one_line(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path)

    refusal(run_standalone(tmp_path, "--config", str(config)))


@pytest.mark.postgres
def test_startup_refuses_postgres_database_never_migrated(
    tmp_path: Path, make_postgres_database: Callable[[], str]
) -> None:
    database_url = make_postgres_database()
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", database_url, free_port())

    line = refusal(run_standalone(tmp_path, "--config", str(config)), only_line=False)

    assert "database_url" in line
    assert "--migrate" in line


def test_startup_refuses_database_behind_head(tmp_path: Path) -> None:
    database_url = sqlite_url(tmp_path / "registry.sqlite3")
    migrate.upgrade(database_url)
    migrate.downgrade(database_url, "-1")
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", database_url, free_port())

    line = refusal(run_standalone(tmp_path, "--config", str(config)), only_line=False)

    assert "database_url" in line
    assert "--migrate" in line


# Migrating and serving


@pytest.fixture
def running_server(tmp_path: Path) -> Iterator[Callable[[list[str], dict[str, str]], str]]:
    """Start the standalone server; return its base URL once /health answers 200."""
    processes: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "server.log"

    def start(args: list[str], env: dict[str, str]) -> str:
        port = int(env.pop("_PORT"))
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                pymager_command(*args), cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        processes.append(process)
        base_url = f"http://127.0.0.1:{port}"
        wait_for_health(process, base_url, log_path)
        return base_url

    yield start
    for process in processes:
        stop_process(process)
    assert "Traceback" not in log_text(log_path), log_text(log_path)


def test_migrate_on_fresh_sqlite_creates_tables(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path)

    result = run_standalone(tmp_path, "--config", str(config), "--migrate")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    database = tmp_path / "data" / "pymager.sqlite3"
    assert database.is_file()
    assert {"originals", "derived", "alembic_version"} <= table_names(sqlite_url(database))
    assert migrate.head_revision() in result.stdout


def test_migrate_twice_is_harmless(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path)
    assert run_standalone(tmp_path, "--config", str(config), "--migrate").returncode == 0

    result = run_standalone(tmp_path, "--config", str(config), "--migrate")

    assert result.returncode == 0, result.stderr


def test_server_starts_after_migrate_and_answers_health(
    tmp_path: Path, running_server: Callable[[list[str], dict[str, str]], str]
) -> None:
    port = free_port()
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", "", port)
    migrated = run_standalone(tmp_path, "--config", str(config), "--migrate")
    assert migrated.returncode == 0, migrated.stderr

    base_url = running_server(["--config", str(config)], environment(_PORT=str(port)))

    response = requests.get(f"{base_url}/health", timeout=5)
    assert response.status_code == 200
    assert (tmp_path / "data" / "originals").is_dir()
    assert (tmp_path / "data" / "derived").is_dir()


def test_server_reads_pymager_ini_in_working_directory(
    tmp_path: Path, running_server: Callable[[list[str], dict[str, str]], str]
) -> None:
    port = free_port()
    write_config(tmp_path / "pymager.ini", tmp_path / "data", "", port)
    assert run_standalone(tmp_path, "--migrate").returncode == 0

    base_url = running_server([], environment(_PORT=str(port)))

    assert requests.get(f"{base_url}/health", timeout=5).status_code == 200


# $PYMAGER_CONFIG


def test_pymager_config_env_is_honoured_without_config_option(
    tmp_path: Path, running_server: Callable[[list[str], dict[str, str]], str]
) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    port = free_port()
    config = write_config(elsewhere / "custom.ini", elsewhere / "data", "", port)
    env = environment(PYMAGER_CONFIG=str(config))

    migrated = run_standalone(tmp_path, "--migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert (elsewhere / "data" / "pymager.sqlite3").is_file()

    base_url = running_server([], environment(PYMAGER_CONFIG=str(config), _PORT=str(port)))

    assert requests.get(f"{base_url}/health", timeout=5).status_code == 200


def test_pymager_config_env_wins_over_working_directory_ini(tmp_path: Path) -> None:
    write_config(tmp_path / "pymager.ini", tmp_path / "data", "", free_port())
    bad = tmp_path / "bad.ini"
    bad.write_text("[server]\nport = http\n", encoding="utf-8")

    line = refusal(run_standalone(tmp_path, env=environment(PYMAGER_CONFIG=str(bad))))

    assert str(bad) in line


def test_config_option_wins_over_pymager_config_env(tmp_path: Path) -> None:
    good = sqlite_config(tmp_path)
    missing = tmp_path / "absent.ini"

    result = run_standalone(
        tmp_path, "--config", str(good), "--migrate", env=environment(PYMAGER_CONFIG=str(missing))
    )

    assert result.returncode == 0, result.stderr


def test_pymager_config_env_naming_missing_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "absent.ini"

    line = refusal(run_standalone(tmp_path, env=environment(PYMAGER_CONFIG=str(missing))))

    assert str(missing) in line


def test_startup_refuses_non_utf8_config(tmp_path: Path) -> None:
    config = tmp_path / "pymager.ini"
    config.write_bytes(b"[pymager]\ncache_control_original = caf\xe9\n")

    line = refusal(run_standalone(tmp_path, "--config", str(config)))

    assert str(config) in line
