"""Settings, loaded once from ``pymager.ini`` and passed in. Errors name the section, key and value."""

from __future__ import annotations

import configparser
import hashlib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

from pymager.domain import DecodeLimits, Mode, Size, SizePolicy
from pymager.signing import UrlKey, parse_url_keys

CONFIG_ENV = "PYMAGER_CONFIG"
# Replaces [auth] url_keys when set and not blank, so that the secrets need not sit in pymager.ini.
URL_KEYS_ENV = "PYMAGER_URL_KEYS"
# The HMAC key of CDN purge notices ([cdn] purge_url): only ever from the environment.
PURGE_KEY_ENV = "PYMAGER_PURGE_KEY"
DEFAULT_CONFIG = "pymager.ini"

_T = TypeVar("_T")
# The default cap on cold requests per process, per generation slot (measured: benchmarks/README.md).
COLD_REQUESTS_PER_SLOT = 4


# Who computes the ETag of a derived file that a front server also serves from disk: the formula of
# Apache's "FileETag MTime Size" or of nginx's built-in ETag (deploy/apache, deploy/nginx).
EtagStyle = Literal["apache", "nginx"]
ETAG_STYLES: tuple[EtagStyle, ...] = ("apache", "nginx")


class ConfigError(Exception):
    """The configuration cannot be used. The message is one line naming the key and the value."""


@dataclass(frozen=True)
class Settings:
    """Everything pymager reads from its configuration file."""

    data_directory: Path
    database_url: str
    allowed_sizes: frozenset[tuple[Size, Mode]]
    max_dimension: int = 4096
    max_upload_bytes: int = 50 * 1024 * 1024
    min_free_bytes: int = 100 * 1024 * 1024  # kept free on the data directory (README, "Disk reserve")
    max_pixels: int = DecodeLimits.max_pixels
    max_image_side: int = DecodeLimits.max_image_side
    max_frames: int = DecodeLimits.max_frames
    max_animation_pixels: int = DecodeLimits.max_animation_pixels
    max_jpeg_scans: int = DecodeLimits.max_jpeg_scans
    max_metadata_bytes: int = DecodeLimits.max_metadata_bytes
    jpeg_quality: int = 85
    # Chosen by measurement (benchmarks/formats.py, benchmarks/README.md): at these, WebP and AVIF keep
    # at least the default JPEG's quality (SSIM), AVIF in at most 0.8 of its bytes and 10 x its time.
    webp_quality: int = 90
    avif_quality: int = 70
    avif_speed: int = 10
    # Frames an animated derived image may have; None: max_frames (every accepted upload animates).
    max_derived_frames: int | None = None
    pad_colour: tuple[int, int, int] = (255, 255, 255)
    detect_focus: bool = True
    # Reduced copies made at upload, by long side (README, "Reduced copies"); off: derive from originals.
    reduced_copy: bool = True
    reduced_copies: tuple[int, ...] = (3000, 800)
    console: bool = True  # the browser console at /console (README, "Console"); off: 404
    cache_control_original: str = "public, max-age=86400"
    cache_control_derived: str = "public, max-age=86400"
    etag_style: EtagStyle = "apache"
    # Where originals and derived images are kept: "" (the data directory) or s3://<bucket>/<prefix>
    # (README, "Object storage"); the data directory then holds locks, temporary files and the cache.
    storage_url: str = ""
    s3_endpoint_url: str = ""  # "": AWS's own endpoint for s3_region
    s3_region: str = "us-east-1"
    cache_max_bytes: int = 1024 * 1024 * 1024  # the local cache of the bucket, least recently used out
    generation_timeout: float = 60.0
    wait_timeout: float = 30.0
    max_concurrent_generations: int = field(default_factory=lambda: os.cpu_count() or 2)
    # Cold requests one process leads at once; None: see ``cold_request_cap``.
    max_waiting_generations: int | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    thread_pool: int = 16
    # Standalone server processes sharing one listening socket (README, "Configuration"): 1 by default.
    processes: int = 1
    socket_timeout: float = 10.0
    header_timeout: float = 20.0  # seconds for the request line and headers (standalone server)
    min_body_rate: int = 500  # bytes per second a body averages after header_timeout (standalone)
    api_keys: frozenset[str] = frozenset()  # "sha256:<hex>" of each key allowed to write
    url_keys: tuple[UrlKey, ...] = ()  # signing keys of derived URLs, the first signs; empty: unsigned
    # CDN purge notices (README, "CDN purge"): the webhook ("": none sent), the URL prefix the CDN
    # serves pymager at (what the notices' URLs start with; "": paths), and the notices' HMAC key.
    purge_url: str = ""
    public_url: str = ""
    purge_key: bytes = field(default=b"", repr=False)

    @property
    def decode_limits(self) -> DecodeLimits:
        """The decoding limits, as the image processor takes them."""
        return DecodeLimits(
            max_pixels=self.max_pixels,
            max_image_side=self.max_image_side,
            max_frames=self.max_frames,
            max_animation_pixels=self.max_animation_pixels,
            max_jpeg_scans=self.max_jpeg_scans,
            max_metadata_bytes=self.max_metadata_bytes,
        )

    @classmethod
    def for_directory(cls, data_directory: Path, **overrides: object) -> Settings:
        """Defaults for a data directory (SQLite inside it); used by tests and tools."""
        values: dict[str, object] = {
            "data_directory": data_directory,
            "database_url": default_database_url(data_directory),
            "allowed_sizes": frozenset(),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def cold_request_cap(self) -> int:
        """``max_waiting_generations``, or by default COLD_REQUESTS_PER_SLOT cold requests per generation
        slot, at most half the thread pool (never fewer than the slots): the other threads stay free
        for cache hits and /health (README, "Performance")."""
        if self.max_waiting_generations is not None:
            return self.max_waiting_generations
        slots = self.max_concurrent_generations
        return max(slots, min(COLD_REQUESTS_PER_SLOT * slots, self.thread_pool // 2))

    @property
    def reduced_sides(self) -> tuple[int, ...]:
        """The long sides of the reduced copies uploads make: ``reduced_copies``, none when
        ``reduced_copy`` is off."""
        return self.reduced_copies if self.reduced_copy else ()

    @property
    def size_policy(self) -> SizePolicy:
        """The derived sizes this server produces (``max_dimension``, ``allowed_sizes``)."""
        return SizePolicy(self.max_dimension, self.allowed_sizes)


def default_database_url(data_directory: Path) -> str:
    return f"sqlite:///{data_directory / 'pymager.sqlite3'}"


def config_path(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The configuration file to read: ``explicit``, else ``$PYMAGER_CONFIG``, else ``./pymager.ini``."""
    return Path(explicit or environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be a finite number greater than 0")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise ValueError("must be between 1 and 100")
    return value


def _avif_speed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise ValueError("must be between 0 (slowest, smallest) and 10 (fastest)")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


_ALLOWED_SIZE = re.compile(r"\s*([0-9]{1,9})x([0-9]{1,9})(?:-([a-z]+))?\s*")


def _sizes(text: str) -> frozenset[tuple[Size, Mode]]:
    """``100x100, 800x0-fit, 400x400-pad``: an entry without a mode allows fill only; a 0 side
    (unbounded) belongs in a fit entry."""
    allowed = set()
    for part in text.split(","):
        if not part.strip():
            continue
        match = _ALLOWED_SIZE.fullmatch(part)
        if match is None or match.group(3) not in (None, "fit", "pad"):
            raise ValueError(f"expected <width>x<height>[-fit|-pad], got {part.strip()!r}")
        size = Size.parse(f"{match.group(1)}x{match.group(2)}")
        mode = Mode(match.group(3) or "fill")
        if not size.bounded and mode is not Mode.FIT:
            raise ValueError(f"{part.strip()!r}: a 0 side (unbounded) is for fit only, e.g. {size}-fit")
        allowed.add((size, mode))
    return frozenset(allowed)


def _colour(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", text)
    if match is None:
        raise ValueError("expected a colour as #rrggbb")
    value = int(match.group(1), 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise ValueError("expected on or off")


def _sides(text: str) -> tuple[int, ...]:
    """``3000, 640``: long sides in pixels, kept largest first."""
    sides = {_positive_int(part) for part in text.split(",") if part.strip()}
    if not sides:
        raise ValueError("expected one or more long sides in pixels, e.g. 3000, 640")
    return tuple(sorted(sides, reverse=True))


def _text(text: str) -> str:
    return text


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _storage_url(text: str) -> str:
    """``""`` (the data directory) or ``s3://<bucket>[/<prefix>]``."""
    if not text:
        return ""
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not text.startswith("s3://") or not _BUCKET.fullmatch(bucket):
        raise ValueError(
            "expected s3://<bucket>/<prefix> (a bucket name of 3 to 63 lowercase letters, digits, . or -)"
        )
    if any(part in (".", "..") for part in prefix.split("/")):
        raise ValueError("the prefix may not have . or .. segments")
    return text


def _http_url(text: str) -> str:
    """``""`` or an absolute http(s) URL."""
    if not text:
        return ""
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s#]*)?", text):
        raise ValueError("expected an http:// or https:// URL")
    return text


def _etag_style(text: str) -> EtagStyle:
    if text not in ETAG_STYLES:
        raise ValueError(f"expected one of {', '.join(ETAG_STYLES)}")
    return text


KEY_HASH_PREFIX = "sha256:"
_SECRET_KEYS = frozenset({"api_keys", "url_keys"})  # values never repeated in error messages


def hash_api_key(key: str) -> str:
    """The form in which an API key is stored in ``[auth] api_keys``."""
    return KEY_HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _key_hashes(text: str) -> frozenset[str]:
    hashes = [part.strip().lower() for part in text.split(",") if part.strip()]
    for number, entry in enumerate(hashes, start=1):
        digest = entry.removeprefix(KEY_HASH_PREFIX)
        if not entry.startswith(KEY_HASH_PREFIX) or len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise ValueError(
                f"entry {number} is not sha256:<64 hex digits>; store hashes, never keys "
                "(make one with: pymager_standalone.py --hash-key)"
            )
    return frozenset(hashes)


# section → key → (parser, Settings field)
_SCHEMA: dict[str, dict[str, Callable[[str], object]]] = {
    "pymager": {
        "data_directory": _text,
        "database_url": _text,
        "allowed_sizes": _sizes,
        "max_dimension": _positive_int,
        "max_upload_bytes": _positive_int,
        "min_free_bytes": _non_negative_int,
        "max_pixels": _positive_int,
        "max_image_side": _positive_int,
        "max_frames": _positive_int,
        "max_animation_pixels": _positive_int,
        "max_jpeg_scans": _positive_int,
        "max_metadata_bytes": _positive_int,
        "jpeg_quality": _quality,
        "webp_quality": _quality,
        "avif_quality": _quality,
        "avif_speed": _avif_speed,
        "max_derived_frames": _positive_int,
        "pad_colour": _colour,
        "detect_focus": _boolean,
        "reduced_copy": _boolean,
        "reduced_copies": _sides,
        "console": _boolean,
        "cache_control_original": _text,
        "cache_control_derived": _text,
        "etag_style": _etag_style,
        "storage_url": _storage_url,
        "s3_endpoint_url": _text,
        "s3_region": _text,
        "cache_max_bytes": _positive_int,
        "generation_timeout": _positive_float,
        "wait_timeout": _positive_float,
        "max_concurrent_generations": _positive_int,
        "max_waiting_generations": _positive_int,
    },
    "server": {
        "host": _text,
        "port": _port,
        "thread_pool": _positive_int,
        "processes": _positive_int,
        "socket_timeout": _positive_float,
        "header_timeout": _positive_float,
        "min_body_rate": _positive_int,
    },
    "auth": {
        "api_keys": _key_hashes,
        "url_keys": parse_url_keys,
    },
    "cdn": {
        "purge_url": _http_url,
        "public_url": _http_url,
    },
}


def load_settings(path: Path, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and validate a configuration file (and ``$PYMAGER_URL_KEYS`` in ``environ``). Relative
    ``data_directory`` is resolved against the file's directory. Raise ``ConfigError`` with one line
    naming what is wrong."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: malformed configuration: {first_line}") from None

    if parser.defaults():
        names = ", ".join(repr(key) for key in parser.defaults())
        raise ConfigError(f"{path}: unknown key {names} in [DEFAULT]; use [pymager] or [server]")
    values: dict[str, object] = {}
    for section in parser.sections():
        keys = _SCHEMA.get(section)
        if keys is None:
            raise ConfigError(f"{path}: unknown section [{section}]; known: {', '.join(_SCHEMA)}")
        for key, raw in parser.items(section):
            parse = keys.get(key)
            if parse is None:
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}]")
            values[key] = _parse(path, section, key, raw.strip(), parse)
    # The environment wins rather than merges: a key retired from it must not live on in the file.
    url_keys = environ.get(URL_KEYS_ENV, "").strip()
    if url_keys:
        try:
            values["url_keys"] = parse_url_keys(url_keys)
        except ValueError as exc:
            raise ConfigError(f"${URL_KEYS_ENV} = <redacted> is invalid: {exc}") from None

    purge_key = environ.get(PURGE_KEY_ENV, "").strip()
    if purge_key:
        values["purge_key"] = purge_key.encode("utf-8")

    base = path.resolve().parent
    data_directory = Path(str(values.pop("data_directory", "data")) or "data").expanduser()
    if not data_directory.is_absolute():
        data_directory = base / data_directory
    database_url = _resolve_sqlite(str(values.pop("database_url", "")), base) or default_database_url(
        data_directory
    )
    values.setdefault("allowed_sizes", frozenset())
    settings = Settings(data_directory=data_directory, database_url=database_url, **values)  # type: ignore[arg-type]
    if settings.processes > 1 and "max_concurrent_generations" not in values:
        # The cores are the machine's: the workers share its generation slots, so that N processes
        # bound CPU and memory as one does; each still admits the cold requests one process would, so
        # that a burst one process takes is not refused for landing unevenly on the workers.
        slots = max(1, settings.max_concurrent_generations // settings.processes)
        settings = replace(
            settings, max_concurrent_generations=slots, max_waiting_generations=settings.cold_request_cap
        )
    return settings


def _parse(path: Path, section: str, key: str, raw: str, parse: Callable[[str], _T]) -> _T:
    try:
        return parse(raw)
    except ValueError as exc:
        shown = "<redacted>" if key in _SECRET_KEYS else repr(raw)
        raise ConfigError(f"{path}: [{section}] {key} = {shown} is invalid: {exc}") from None


def _resolve_sqlite(url: str, base: Path) -> str:
    """Make a relative SQLite path (``sqlite:///rel.db``) relative to the configuration file."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path, separator, query = url[len(prefix) :].partition("?")
    if not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return f"{prefix}{base / path}{separator}{query}"
