"""The security settings: decoding limits and API keys are read, validated, shipped and documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymager.config import _SCHEMA, ConfigError, Settings, hash_api_key, load_settings

REPO = Path(__file__).resolve().parents[2]
LIMITS = {
    "max_pixels": 50_000_000,
    "max_image_side": 20_000,
    "max_frames": 1_000,
    "max_animation_pixels": 250_000_000,
    "max_jpeg_scans": 100,
    "max_metadata_bytes": 4 * 1024 * 1024,
}


def test_shipped_ini_sets_the_documented_limits() -> None:
    settings = load_settings(REPO / "pymager.ini")
    assert {name: getattr(settings, name) for name in LIMITS} == LIMITS
    assert settings.api_keys == frozenset()


def test_every_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pymager.ini"
    path.write_text("[pymager]\n" + "".join(f"{name} = {n}\n" for n, name in enumerate(LIMITS, start=7)))
    settings = load_settings(path)
    assert [getattr(settings, name) for name in LIMITS] == list(range(7, 7 + len(LIMITS)))


@pytest.mark.parametrize("name", sorted(LIMITS))
@pytest.mark.parametrize("value", ["0", "-5", "many", "1.5"])
def test_a_limit_must_be_a_positive_integer(tmp_path: Path, name: str, value: str) -> None:
    path = tmp_path / "pymager.ini"
    path.write_text(f"[pymager]\n{name} = {value}\n")
    with pytest.raises(ConfigError, match=rf"\[pymager\] {name} = '{value}' is invalid"):
        load_settings(path)


def test_an_api_key_hash_is_sha256_of_the_key() -> None:
    assert hash_api_key("k") == "sha256:8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a"
    assert Settings.for_directory(Path("d"), api_keys=frozenset({hash_api_key("k")})).api_keys


@pytest.mark.parametrize("entry", ["sha256:abc", "md5:" + "0" * 32, "sha256:" + "g" * 64])
def test_api_keys_refuse_what_is_not_a_sha256_hash(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "pymager.ini"
    path.write_text(f"[auth]\napi_keys = {entry}\n")
    with pytest.raises(ConfigError, match="entry 1 is not sha256:<64 hex digits>"):
        load_settings(path)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for section, keys in _SCHEMA.items():
        assert f"`[{section}]`" in readme, section
        for key in keys:
            assert f"| `{key}` |" in readme, key
