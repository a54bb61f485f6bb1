"""The standalone server's request deadlines (``pymager/web/deadlines.py``): their settings, and the
deadline of a request's head and of its body. Against a real server: tests/functional/test_slowloris.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymager.config import ConfigError, load_settings
from pymager.web.deadlines import _Phase


def test_request_deadlines_default_to_mod_reqtimeout_s_and_are_read(tmp_path: Path) -> None:
    config = tmp_path / "pymager.ini"
    config.write_text("[server]\n", encoding="utf-8")
    defaults = load_settings(config)
    assert (defaults.header_timeout, defaults.min_body_rate) == (20.0, 500)
    config.write_text("[server]\nheader_timeout = 2.5\nmin_body_rate = 1000\n", encoding="utf-8")
    read = load_settings(config)
    assert (read.header_timeout, read.min_body_rate) == (2.5, 1000)


@pytest.mark.parametrize(("key", "value"), [("header_timeout", "0"), ("min_body_rate", "0.5")])
def test_request_deadlines_must_be_positive(tmp_path: Path, key: str, value: str) -> None:
    config = tmp_path / "pymager.ini"
    config.write_text(f"[server]\n{key} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"\[server\] {key} = '{value}' is invalid"):
        load_settings(config)


def test_the_head_has_a_fixed_deadline() -> None:
    head = _Phase(started=100.0, allowance=20.0)
    head.received = 10_000
    assert head.deadline() == 120.0


def test_the_body_s_deadline_grows_by_a_second_per_min_body_rate_bytes_received() -> None:
    body = _Phase(started=100.0, allowance=20.0, rate=500)
    assert body.deadline() == 120.0
    body.received = 5_000
    assert body.deadline() == 130.0
