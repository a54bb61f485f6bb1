"""pymager as a user installs it: a wheel of this checkout installed (not editable) into a fresh
virtualenv, run from an empty directory: its ``pymager`` console script's ``migrate``, ``hash-key`` and
``serve`` subcommands, the client subcommands against what it serves, and ``pymager_standalone.py``'s
flags, which the script still takes.

Offline and quick: the wheel is built without build isolation, and the fresh virtualenv takes the
dependencies from the project's own (a ``.pth`` file naming its site-packages). Python does not process
``.pth`` files found in a directory that a ``.pth`` file added, so the editable install's finder there
stays inert and the checkout cannot leak in; ``test_installed_pymager_is_the_wheels`` proves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from pymager.adapters.db import migrate
from pymager.config import hash_api_key
from pymager.web.console import CONTENT_TYPES as CONSOLE_FILES
from pymager.web.console import STATIC_DIRECTORY
from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import (
    REPO,
    RUN_TIMEOUT,
    free_port,
    log_text,
    stop_process,
    wait_for_health,
    write_config,
)

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
# Top-level entries of the checkout that are not part of what setup.py builds.
_NOT_BUILT = {".git", ".ci", ".venv", "benchmarks", "build", "data", "deploy", "dist", "tests"}


@dataclass(frozen=True)
class Installation:
    """A fresh virtualenv with the wheel installed; ``env`` is the environment to run it in."""

    prefix: Path
    site_packages: Path
    env: dict[str, str]

    def command(self, name: str) -> str:
        return str(self.prefix / "bin" / name)

    def run(self, cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the installed ``pymager`` console script with ``args`` in ``cwd``."""
        return subprocess.run(
            [self.command("pymager"), *args],
            cwd=cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )


def _checked(command: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _copy_sources(destination: Path) -> Path:
    """What setup.py builds from, copied out of the checkout: building in place would leave build/ in
    the checkout, and stale modules from an earlier build there would end up in the wheel."""

    def ignored(directory: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name == "__pycache__" or name.endswith(".egg-info")}
        if Path(directory) == REPO:
            skipped |= {name for name in names if name in _NOT_BUILT or name.startswith(".")}
        return skipped

    return Path(shutil.copytree(REPO, destination, ignore=ignored))


def _build_wheel(directory: Path) -> Path:
    sources = _copy_sources(directory / "sources")
    dist = directory / "dist"
    _checked(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(sources)]
    )
    (wheel,) = dist.glob("pymager-*.whl")
    return wheel


def _project_site_packages() -> list[str]:
    paths = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return list(dict.fromkeys(paths))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    directory = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(directory)
    prefix = directory / "venv"
    venv.create(prefix, with_pip=False)
    python = str(prefix / "bin" / "python")
    # The project's pip installs into the fresh interpreter's environment, before that sees any
    # dependency: nothing of the project's virtualenv (its editable pymager) looks installed to pip.
    _checked([*PIP, "--python", python, "install", "--no-deps", "--no-index", "--quiet", str(wheel)])
    site_packages = Path(
        _checked([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip()
    )
    (site_packages / "_pymager_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in _project_site_packages()), encoding="utf-8"
    )
    unrelated = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYMAGER_CONFIG", "VIRTUAL_ENV"}
    env = {key: value for key, value in os.environ.items() if key not in unrelated}
    env["PYTHONNOUSERSITE"] = "1"
    return Installation(prefix, site_packages, env)


@pytest.fixture
def empty_directory(tmp_path: Path) -> Path:
    """The working directory of the installed commands: no checkout, no pymager.ini."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


def test_installed_pymager_is_the_wheels(installed: Installation, empty_directory: Path) -> None:
    probe = (
        "import pymager, pymager_standalone\n"
        "from pymager.adapters.db import migrate\n"
        "print(pymager.__file__); print(pymager_standalone.__file__); print(migrate.migrations_dir())\n"
    )
    output = subprocess.run(
        [installed.command("python"), "-c", probe],
        cwd=empty_directory,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=True,
    ).stdout

    paths = [Path(line) for line in output.splitlines()]
    assert len(paths) == 3, output
    for path in paths:
        assert path.is_relative_to(installed.site_packages), path
        assert not path.resolve().is_relative_to(REPO), path
    assert (paths[2] / "versions").is_dir()


def test_installed_pymager_migrates_from_an_empty_directory(
    installed: Installation, empty_directory: Path, tmp_path: Path
) -> None:
    database = tmp_path / "registry.sqlite3"
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", sqlite_url(database), free_port())

    result = installed.run(empty_directory, "migrate", "--config", str(config))

    assert result.returncode == 0, result.stderr
    assert f"database at revision {migrate.head_revision()}" in result.stdout
    assert database.is_file()
    assert list(empty_directory.iterdir()) == []


def test_installed_pymager_hashes_a_key_without_a_configuration(
    installed: Installation, empty_directory: Path
) -> None:
    result = installed.run(empty_directory, "hash-key", stdin="correct horse\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{hash_api_key('correct horse')}\n"


def test_installed_pymager_serves_after_migrating(
    installed: Installation, empty_directory: Path, tmp_path: Path
) -> None:
    database_url = sqlite_url(tmp_path / "registry.sqlite3")
    port = free_port()
    config = write_config(tmp_path / "pymager.ini", tmp_path / "data", database_url, port)
    assert installed.run(empty_directory, "migrate", "--config", str(config)).returncode == 0
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [installed.command("pymager"), "serve", "--config", str(config)],
            cwd=empty_directory,
            env=installed.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        # /health answers 200 only once the schema matches the revisions the wheel installed.
        wait_for_health(process, base_url, log_path)
        missing = requests.get(f"{base_url}/original/never-uploaded", timeout=10)
        # The console's files are package data: served from the wheel, not from the checkout.
        console = [requests.get(f"{base_url}/console/{name}", timeout=10) for name in CONSOLE_FILES]
        pictures = tmp_path / "pictures"
        pictures.mkdir()
        (pictures / "one.png").write_bytes(images.png(20, 10))
        imported = installed.run(empty_directory, "import", str(pictures), "--url", base_url)
        listed = installed.run(empty_directory, "ls", "--url", base_url)
    finally:
        stop_process(process)  # SIGTERM to its PID, then waits for it

    assert missing.status_code == 404
    assert [response.status_code for response in console] == [200] * len(CONSOLE_FILES)
    assert [response.content for response in console] == [
        (STATIC_DIRECTORY / name).read_bytes() for name in CONSOLE_FILES
    ]
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert listed.stdout.split("\t")[:3] == ["one", "PNG", "20x10"]
    assert "Traceback" not in log_text(log_path)


def test_installed_pymager_keeps_the_standalone_flags(
    installed: Installation, empty_directory: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "pymager.ini", tmp_path / "data", sqlite_url(tmp_path / "r.db"), free_port()
    )

    migrated = installed.run(empty_directory, "--config", str(config), "--migrate")
    hashed = installed.run(empty_directory, "--hash-key", stdin="correct horse\n")

    assert migrated.returncode == 0, migrated.stderr
    assert f"database at revision {migrate.head_revision()}" in migrated.stdout
    assert hashed.stdout == f"{hash_api_key('correct horse')}\n"
