"""schemathesis against a live server and the document it publishes: every operation of
``/openapi.json``, at least 50 generated requests each with a fixed seed, every check but the ones the
document shows do not apply (below), and no failure.

Excluded, with the reason the document gives:
- ``use_after_free`` and ``ensure_resource_availability``: stateful checks that follow OpenAPI links
  between operations; the document declares none (an id is the client's choice, not an answer's).
- ``positive_data_acceptance`` for uploads only accepts a 400 too (tests/functional/schemathesis.toml):
  any bytes are a schema-valid ``file``, and only a picture in an accepted format is stored.
- ``ignored_auth``: every operation that takes a key takes it only when the server has ``api_keys``
  (its security lists ``{}``, no key, as an alternative), so a request without one is rightly accepted
  here; tests/functional/test_auth.py checks the keyed server.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pymager.web.openapi import document
from tests import images
from tests.conftest import sqlite_url
from tests.functional.conftest import Server, start_server, stop_and_check_log, upload

EXCLUDED = ("use_after_free", "ensure_resource_availability", "ignored_auth")
RUN_TIMEOUT = 600
CONFIG = Path(__file__).with_name("schemathesis.toml")
SAMPLE = "schemathesis-sample"  # the stored original schemathesis.toml points reads at
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, operations in document()["paths"].items()
    for method, operation in operations.items()
}


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("schemathesis")
    running = start_server(directory, sqlite_url(directory / "registry.sqlite3"), max_upload_bytes=1 << 20)
    assert upload(running, SAMPLE, images.png(96, 64, mode="RGBA")).status_code == 201
    yield running
    stop_and_check_log(running)


def test_schemathesis_finds_nothing_against_the_published_document(
    fresh_server: Server, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        fresh_server.url("/openapi.json"),
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED),
        "--max-examples",
        "50",
        "--seed",
        "20261202",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path, check=False
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    generated = re.search(r"([0-9]+) generated", result.stdout)
    tested = re.search(r"Tested: ([0-9]+)", result.stdout)
    assert generated is not None, report
    assert tested is not None, report
    selected = re.search(r"Selected: ([0-9]+)/", result.stdout)
    assert selected is not None, report
    assert int(tested.group(1)) == int(selected.group(1)), report  # every operation it found, tested
    # 50 examples of every operation with something to vary (hypothesis makes one example of an
    # operation whose inputs are all fixed: no parameter, or one the configuration sets).
    assert int(generated.group(1)) >= 50 * len(OPERATIONS.keys() - _fixed_operations()), report


def _fixed_operations() -> set[str]:
    fixed = {name for name, operation in OPERATIONS.items() if not operation.get("parameters")}
    for entry in tomllib.loads(CONFIG.read_text(encoding="utf-8")).get("operations", []):
        if "parameters" in entry:
            fixed |= set(entry["include-name"])
    return fixed
