"""Loading pymager.ini: defaults, parsing, and one-line errors that name the key and the value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pymager.config import (
    CONFIG_ENV,
    ConfigError,
    Settings,
    config_path,
    default_database_url,
    load_settings,
)
from pymager.domain import Mode, Size, SizePolicy

REPO = Path(__file__).resolve().parents[2]


def write_ini(directory: Path, text: str, name: str = "pymager.ini") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    """The message of the ``ConfigError`` that loading ``path`` raises, checked to be one line."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message, "empty message"
    assert "\n" not in message, f"not one line: {message!r}"
    return message


# Defaults


def test_load_settings_empty_sections_give_defaults(tmp_path: Path) -> None:
    settings = load_settings(write_ini(tmp_path, "[pymager]\n[server]\n"))

    data_directory = tmp_path.resolve() / "data"
    assert settings == Settings(
        data_directory=data_directory,
        database_url=default_database_url(data_directory),
        allowed_sizes=frozenset(),
    )


def test_load_settings_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write_ini(tmp_path, ""))

    assert settings == Settings.for_directory(tmp_path.resolve() / "data")


def test_load_settings_shipped_ini_gives_documented_defaults() -> None:
    shipped = REPO / "pymager.ini"

    settings = load_settings(shipped)

    assert settings.data_directory == REPO / "data"
    assert settings.database_url == f"sqlite:///{REPO / 'data' / 'pymager.sqlite3'}"
    assert settings.allowed_sizes == frozenset()
    assert settings.max_dimension == 4096
    assert settings.max_upload_bytes == 52428800
    assert settings.jpeg_quality == 85
    assert (settings.webp_quality, settings.avif_quality, settings.avif_speed) == (90, 70, 10)
    assert settings.max_derived_frames is None  # the processor takes max_frames
    assert settings.cache_control_original == "public, max-age=86400"
    assert settings.cache_control_derived == "public, max-age=86400"
    assert settings.generation_timeout == 60.0
    assert settings.wait_timeout == 30.0
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.thread_pool == 16
    assert settings.socket_timeout == 10.0


def test_load_settings_shipped_ini_matches_dataclass_defaults() -> None:
    settings = load_settings(REPO / "pymager.ini")

    assert settings == Settings.for_directory(REPO / "data")


# Values


def test_load_settings_reads_every_key(tmp_path: Path) -> None:
    path = write_ini(
        tmp_path,
        "[pymager]\n"
        "database_url = postgresql+psycopg2://user@db:5432/pymager\n"
        "max_dimension = 2000\n"
        "max_upload_bytes = 1024\n"
        "jpeg_quality = 70\n"
        "webp_quality = 75\n"
        "avif_quality = 40\n"
        "avif_speed = 0\n"
        "max_derived_frames = 50\n"
        "cache_control_original = no-cache\n"
        "cache_control_derived = public, max-age=60\n"
        "generation_timeout = 2.5\n"
        "wait_timeout = 1\n"
        "[server]\n"
        "host = 0.0.0.0\n"
        "port = 9090\n"
        "thread_pool = 4\n"
        "socket_timeout = 3\n",
    )

    settings = load_settings(path)

    assert settings.database_url == "postgresql+psycopg2://user@db:5432/pymager"
    assert settings.max_dimension == 2000
    assert settings.max_upload_bytes == 1024
    assert settings.jpeg_quality == 70
    assert (settings.webp_quality, settings.avif_quality, settings.avif_speed) == (75, 40, 0)
    assert settings.max_derived_frames == 50
    assert settings.cache_control_original == "no-cache"
    assert settings.cache_control_derived == "public, max-age=60"
    assert settings.generation_timeout == 2.5
    assert settings.wait_timeout == 1.0
    assert settings.host == "0.0.0.0"
    assert settings.port == 9090
    assert settings.thread_pool == 4
    assert settings.socket_timeout == 3.0


def test_load_settings_parses_allowed_sizes_to_frozenset_of_size(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\nallowed_sizes = 100x100, 800x600\n")

    settings = load_settings(path)

    assert settings.allowed_sizes == frozenset({(Size(100, 100), Mode.FILL), (Size(800, 600), Mode.FILL)})
    assert isinstance(settings.allowed_sizes, frozenset)


def test_allowed_sizes_entries_carry_a_mode_and_without_one_mean_fill(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\nallowed_sizes = 100x100, 800x0-fit, 400x400-pad, 0x300-fit\n")

    assert load_settings(path).allowed_sizes == {
        (Size(100, 100), Mode.FILL),
        (Size(800, 0), Mode.FIT),
        (Size(400, 400), Mode.PAD),
        (Size(0, 300), Mode.FIT),
    }


@pytest.mark.parametrize(
    "entry", ["800x0", "800x0-pad", "0x0-fit", "100x100-fill", "100x100-crop", "100x100-"]
)
def test_allowed_sizes_outside_the_grammar_stop_start_up_in_one_line(tmp_path: Path, entry: str) -> None:
    path = write_ini(tmp_path, f"[pymager]\nallowed_sizes = 100x100, {entry}\n")
    with pytest.raises(ConfigError, match=r"\[pymager\] allowed_sizes = .* is invalid") as raised:
        load_settings(path)
    assert "\n" not in str(raised.value)


def test_pad_colour_and_detect_focus_are_read(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\npad_colour = #1a2B3c\ndetect_focus = off\n")
    settings = load_settings(path)
    assert settings.pad_colour == (0x1A, 0x2B, 0x3C)
    assert settings.detect_focus is False
    defaults = load_settings(write_ini(tmp_path, "[pymager]\n"))
    assert (defaults.pad_colour, defaults.detect_focus) == ((255, 255, 255), True)


def test_console_setting_is_read_and_on_by_default(tmp_path: Path) -> None:
    assert load_settings(write_ini(tmp_path, "[pymager]\nconsole = off\n")).console is False
    assert load_settings(write_ini(tmp_path, "[pymager]\nconsole = on\n")).console is True
    assert load_settings(write_ini(tmp_path, "[pymager]\n")).console is True


def test_load_settings_allowed_sizes_ignores_empty_items(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\nallowed_sizes = 100x100,, 800x600 ,\n")

    assert load_settings(path).allowed_sizes == {(Size(100, 100), Mode.FILL), (Size(800, 600), Mode.FILL)}


def test_size_policy_comes_from_max_dimension_and_allowed_sizes(tmp_path: Path) -> None:
    settings = load_settings(
        write_ini(tmp_path, "[pymager]\nallowed_sizes = 100x100, 5000x10\nmax_dimension = 1000\n")
    )

    allowed = frozenset({(Size(100, 100), Mode.FILL), (Size(5000, 10), Mode.FILL)})
    assert settings.size_policy == SizePolicy(1000, allowed)


def test_size_policy_without_allowed_sizes_admits_every_size_up_to_max_dimension(tmp_path: Path) -> None:
    settings = load_settings(write_ini(tmp_path, "[pymager]\nallowed_sizes =\n"))

    assert settings.size_policy == SizePolicy(4096, frozenset())


def test_load_settings_resolves_relative_data_directory_against_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_directory = tmp_path / "etc"
    config_directory.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_ini(config_directory, "[pymager]\ndata_directory = images/store\n")

    settings = load_settings(path)

    assert settings.data_directory == config_directory.resolve() / "images" / "store"
    assert settings.database_url == default_database_url(config_directory.resolve() / "images" / "store")


def test_load_settings_relative_path_to_file_resolves_against_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    write_ini(tmp_path / "etc", "[pymager]\ndata_directory = store\n")
    monkeypatch.chdir(tmp_path)

    settings = load_settings(Path("etc/pymager.ini"))

    assert settings.data_directory == tmp_path.resolve() / "etc" / "store"
    assert settings.data_directory.is_absolute()


def test_load_settings_keeps_absolute_data_directory(tmp_path: Path) -> None:
    absolute = tmp_path / "absolute" / "data"
    path = write_ini(tmp_path, f"[pymager]\ndata_directory = {absolute}\n")

    settings = load_settings(path)

    assert settings.data_directory == absolute
    assert settings.database_url == f"sqlite:///{absolute / 'pymager.sqlite3'}"


def test_load_settings_empty_data_directory_means_data(tmp_path: Path) -> None:
    settings = load_settings(write_ini(tmp_path, "[pymager]\ndata_directory =\n"))

    assert settings.data_directory == tmp_path.resolve() / "data"


def test_load_settings_explicit_database_url_wins_over_default(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\ndatabase_url = sqlite:////srv/registry.sqlite3\n")

    assert load_settings(path).database_url == "sqlite:////srv/registry.sqlite3"


def test_load_settings_keys_are_case_insensitive_and_values_stripped(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[server]\nPort =   9001   \n")

    assert load_settings(path).port == 9001


# Invalid values: ConfigError, one line naming the key and the value


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("pymager", "max_dimension", "abc"),
        ("pymager", "max_dimension", "0"),
        ("pymager", "max_upload_bytes", "-5"),
        ("pymager", "max_upload_bytes", "50MB"),
        ("pymager", "jpeg_quality", "0"),
        ("pymager", "jpeg_quality", "101"),
        ("pymager", "jpeg_quality", "high"),
        ("pymager", "webp_quality", "0"),
        ("pymager", "webp_quality", "lossless"),
        ("pymager", "avif_quality", "101"),
        ("pymager", "avif_speed", "11"),
        ("pymager", "avif_speed", "-1"),
        ("pymager", "avif_speed", "fast"),
        ("pymager", "max_derived_frames", "0"),
        ("pymager", "max_derived_frames", "all"),
        ("pymager", "allowed_sizes", "10by10"),
        ("pymager", "allowed_sizes", "100x100, 0x5"),
        ("pymager", "allowed_sizes", "100x100, -5x5"),
        ("pymager", "pad_colour", "white"),
        ("pymager", "pad_colour", "#fff"),
        ("pymager", "detect_focus", "maybe"),
        ("pymager", "console", "enabled"),
        ("pymager", "generation_timeout", "0"),
        ("pymager", "generation_timeout", "soon"),
        ("pymager", "wait_timeout", "-1"),
        ("pymager", "wait_timeout", "nan"),
        ("server", "port", "70000"),
        ("server", "port", "-1"),
        ("server", "port", "http"),
        ("server", "thread_pool", "0"),
        ("server", "thread_pool", "2.5"),
        ("server", "socket_timeout", "0"),
    ],
)
def test_load_settings_invalid_value_names_key_and_value(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    path = write_ini(tmp_path, f"[{section}]\n{key} = {value}\n")

    message = config_error(path)

    assert key in message
    assert value in message
    assert str(path) in message


def test_load_settings_multiline_value_error_stays_one_line(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\nallowed_sizes = 10x10,\n  20by20\n")

    message = config_error(path)

    assert "allowed_sizes" in message
    assert "20by20" in message


@pytest.mark.parametrize("key", ["generation_timeout", "wait_timeout"])
def test_load_settings_rejects_infinite_timeout(tmp_path: Path, key: str) -> None:
    path = write_ini(tmp_path, f"[pymager]\n{key} = inf\n")

    message = config_error(path)

    assert key in message


# Unknown keys and sections


def test_load_settings_unknown_key_names_key_and_section(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\nmax_dimensions = 10\n")

    message = config_error(path)

    assert "max_dimensions" in message
    assert "[pymager]" in message


def test_load_settings_key_in_wrong_section_is_unknown(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\nport = 8080\n")

    message = config_error(path)

    assert "port" in message
    assert "[pymager]" in message


def test_load_settings_unknown_section_names_it(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\n[database]\nurl = sqlite://\n")

    message = config_error(path)

    assert "[database]" in message


def test_load_settings_unknown_key_in_default_section_is_reported(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[DEFAULT]\nmax_dimensions = 10\n")

    message = config_error(path)

    assert "max_dimensions" in message


# Unreadable or malformed files


def test_load_settings_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pymager.ini"

    message = config_error(missing)

    assert str(missing) in message


def test_load_settings_directory_instead_of_file_is_config_error(tmp_path: Path) -> None:
    message = config_error(tmp_path)

    assert str(tmp_path) in message


def test_load_settings_without_section_header_is_config_error(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "data_directory = data\n")

    message = config_error(path)

    assert str(path) in message
    assert "malformed" in message


def test_load_settings_duplicate_key_is_config_error(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[server]\nport = 1\nport = 2\n")

    message = config_error(path)

    assert "port" in message


def test_load_settings_non_utf8_file_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pymager.ini"
    path.write_bytes(b"[pymager]\ncache_control_original = caf\xe9\n")

    message = config_error(path)

    assert str(path) in message


# Which file


def test_config_path_explicit_wins_over_environment(tmp_path: Path) -> None:
    explicit = str(tmp_path / "explicit.ini")

    assert config_path(explicit, {CONFIG_ENV: str(tmp_path / "env.ini")}) == Path(explicit)


def test_config_path_environment_wins_over_default(tmp_path: Path) -> None:
    from_env = str(tmp_path / "env.ini")

    assert config_path(None, {CONFIG_ENV: from_env}) == Path(from_env)


def test_config_path_defaults_to_pymager_ini_in_working_directory() -> None:
    assert config_path(None, {}) == Path("pymager.ini")


def test_config_path_empty_environment_value_falls_back_to_default() -> None:
    assert config_path(None, {CONFIG_ENV: ""}) == Path("pymager.ini")


def test_load_settings_resolves_a_relative_sqlite_path_against_the_file(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "pymager.ini"
    config.parent.mkdir()
    config.write_text("[pymager]\ndatabase_url = sqlite:///db/registry.sqlite3\n", encoding="utf-8")
    assert load_settings(config).database_url == f"sqlite:///{tmp_path / 'etc' / 'db' / 'registry.sqlite3'}"


@pytest.mark.parametrize(
    "url",
    ["sqlite:////var/lib/pymager.db", "sqlite://", "sqlite:///:memory:", "postgresql+psycopg2://u@h/db"],
)
def test_load_settings_keeps_absolute_and_non_file_database_urls(tmp_path: Path, url: str) -> None:
    config = tmp_path / "pymager.ini"
    config.write_text(f"[pymager]\ndatabase_url = {url}\n", encoding="utf-8")
    assert load_settings(config).database_url == url


def test_load_settings_max_concurrent_generations_defaults_to_the_cores(tmp_path: Path) -> None:
    config = tmp_path / "pymager.ini"
    config.write_text("[pymager]\n", encoding="utf-8")
    assert load_settings(config).max_concurrent_generations == (os.cpu_count() or 2)
    config.write_text("[pymager]\nmax_concurrent_generations = 3\n", encoding="utf-8")
    assert load_settings(config).max_concurrent_generations == 3
    config.write_text("[pymager]\nmax_concurrent_generations = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_concurrent_generations = '0'"):
        load_settings(config)


def test_load_settings_processes_default_to_one(tmp_path: Path) -> None:
    assert load_settings(write_ini(tmp_path, "[server]\n")).processes == 1
    with pytest.raises(ConfigError, match="processes = '0'"):
        load_settings(write_ini(tmp_path, "[server]\nprocesses = 0\n", name="zero.ini"))


def test_workers_share_the_cores_generation_slots_and_each_admits_what_one_process_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    one = load_settings(write_ini(tmp_path, "[server]\nthread_pool = 16\n"))
    two = load_settings(write_ini(tmp_path, "[server]\nthread_pool = 16\nprocesses = 2\n", name="two.ini"))
    assert (one.max_concurrent_generations, one.cold_request_cap) == (4, 8)
    assert (two.max_concurrent_generations, two.cold_request_cap) == (2, 8)
    eight = load_settings(write_ini(tmp_path, "[server]\nprocesses = 8\n", name="eight.ini"))
    assert eight.max_concurrent_generations == 1
    chosen = "[pymager]\nmax_concurrent_generations = 3\n[server]\nprocesses = 2\n"
    assert load_settings(write_ini(tmp_path, chosen, name="chosen.ini")).max_concurrent_generations == 3


def test_etag_style_defaults_to_apache_and_reads_nginx(tmp_path: Path) -> None:
    assert load_settings(write_ini(tmp_path, "[pymager]\n")).etag_style == "apache"
    nginx = write_ini(tmp_path, "[pymager]\netag_style = nginx\n", name="nginx.ini")
    assert load_settings(nginx).etag_style == "nginx"


def test_an_unknown_etag_style_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[pymager]\netag_style = lighttpd\n")
    with pytest.raises(ConfigError, match=r"\[pymager\] etag_style = 'lighttpd' is invalid: expected one of"):
        load_settings(path)
