"""The composition root: the only module that imports adapters. Entry points import this."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cherrypy
from cherrypy.process.plugins import SimplePlugin
from sqlalchemy.engine import make_url

from pymager.adapters.db import migrate
from pymager.adapters.db.locks import AdvisoryLocks
from pymager.adapters.db.uow import SqlRegistry, make_engine
from pymager.adapters.db.urls import UnsupportedDatabaseURL, engine_url, shown_url
from pymager.adapters.filesystem import FileBlobStore, FileInventory
from pymager.adapters.locks import FileLocks
from pymager.adapters.metrics import PrometheusMetrics
from pymager.adapters.pillow import PillowProcessor
from pymager.adapters.s3 import S3BlobStore
from pymager.adapters.s3client import make_client, split_storage_url
from pymager.adapters.s3inventory import S3Inventory
from pymager.adapters.webhook import WebhookSender
from pymager.config import PURGE_KEY_ENV, ConfigError, Settings, load_settings
from pymager.domain import ImageId
from pymager.errors import ServiceUnavailable
from pymager.interfaces import IBlobInventory, IGenerationLocks, IMetrics
from pymager.outbox import PurgeNotices
from pymager.process import tune_process
from pymager.repair import Finding, Repairer
from pymager.service import BackfillReport, ImageService
from pymager.web.app import make_app

log = logging.getLogger(__name__)

__all__ = [
    "BackfillReport",
    "Components",
    "PurgePlugin",
    "RegistryPlugin",
    "StartupError",
    "backfill",
    "build",
    "check_consistency",
    "database_label",
    "make_wsgi_app",
    "migrate_database",
    "purge_derived",
    "tune_process",
]


class StartupError(Exception):
    """pymager cannot start; the message is one line saying why."""


@dataclass(frozen=True)
class Components:
    service: ImageService
    registry: SqlRegistry
    blobs: FileBlobStore | S3BlobStore
    metrics: PrometheusMetrics
    notices: PurgeNotices | None = None  # None: no purge_url


def _prepare_sqlite_directory(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)


def _open_storage(settings: Settings) -> tuple[FileBlobStore | S3BlobStore, SqlRegistry]:
    """The data directory and the registry, checked usable; ``StartupError`` names what is not."""
    shown = shown_url(settings.database_url)
    try:
        engine_url(settings.database_url)
    except UnsupportedDatabaseURL as exc:
        raise StartupError(f"database_url = {shown!r}: {exc}") from None
    try:
        settings.data_directory.mkdir(parents=True, exist_ok=True)
        _prepare_sqlite_directory(settings.database_url)
    except OSError as exc:
        raise StartupError(f"data_directory = {str(settings.data_directory)!r}: {exc.strerror}") from None
    try:
        registry = SqlRegistry(make_engine(settings.database_url))
    except Exception as exc:
        raise StartupError(f"database_url = {shown!r}: {exc}") from None
    blobs: FileBlobStore | S3BlobStore
    if settings.storage_url:
        # Every read of the bucket checks the registry first (pymager.adapters.s3).
        bucket, prefix = split_storage_url(settings.storage_url)
        client = make_client(settings.s3_endpoint_url, settings.s3_region, settings.thread_pool + 4)
        blobs = S3BlobStore(
            client,
            bucket,
            prefix,
            registry,
            settings.data_directory,
            settings.cache_max_bytes,
            settings.etag_style,
        )
        where = f"storage_url = {settings.storage_url!r}"
    else:
        blobs = FileBlobStore(settings.data_directory, settings.etag_style)
        where = f"data_directory = {str(settings.data_directory)!r}"
    try:
        blobs.prepare()
    except ServiceUnavailable as exc:
        registry.dispose()
        raise StartupError(f"{where}: {exc.detail}") from None
    try:
        registry.ping()
    except ServiceUnavailable as exc:
        registry.dispose()
        raise StartupError(f"database_url = {shown!r}: {exc.detail}") from None
    return blobs, registry


def _inventory(blobs: FileBlobStore | S3BlobStore) -> IBlobInventory:
    return S3Inventory(blobs) if isinstance(blobs, S3BlobStore) else FileInventory(blobs)


def _generation_locks(settings: Settings, registry: SqlRegistry) -> IGenerationLocks:
    """PostgreSQL advisory locks when the registry is shared over the network; lock files otherwise
    (SQLite lives on one host, and ``flock`` is not reliable on network filesystems)."""
    if registry.engine.dialect.name == "postgresql":
        return AdvisoryLocks(registry.engine)
    return FileLocks(settings.data_directory)


def build(settings: Settings) -> Components:
    """Wire the service to its adapters and check that the data directory and registry are usable."""
    blobs, registry = _open_storage(settings)
    metrics = PrometheusMetrics()
    notices = _notices(settings, registry, metrics)
    service = _service(settings, registry, blobs, metrics, notices)
    return Components(service, registry, blobs, metrics, notices)


def _notices(settings: Settings, registry: SqlRegistry, metrics: IMetrics) -> PurgeNotices | None:
    if not settings.purge_url:
        return None
    if not settings.purge_key:
        # Checked here, not when the file is read: tools that only read it (deploy renderers) need no key.
        registry.dispose()
        raise StartupError(
            f"[cdn] purge_url is set but ${PURGE_KEY_ENV} is empty: purge notices are always signed, "
            "with a key from the environment"
        )
    return PurgeNotices(settings, registry, WebhookSender(settings.purge_url, settings.purge_key), metrics)


def _service(
    settings: Settings,
    registry: SqlRegistry,
    blobs: FileBlobStore | S3BlobStore,
    metrics: PrometheusMetrics,
    notices: PurgeNotices | None = None,
) -> ImageService:
    processor = PillowProcessor(
        settings.jpeg_quality,
        settings.decode_limits,
        pad_colour=settings.pad_colour,
        detect_focus=settings.detect_focus,
        webp_quality=settings.webp_quality,
        avif_quality=settings.avif_quality,
        avif_speed=settings.avif_speed,
        max_derived_frames=settings.max_derived_frames,
    )
    locks = _generation_locks(settings, registry)
    return ImageService(settings, registry, blobs, processor, locks, metrics, notices=notices)


def _deliver_before_exit(notices: PurgeNotices) -> None:
    """A tool's notices: sent now if the webhook answers; otherwise the servers' deliverers retry them
    from the outbox, and the tool's own work still stands."""
    try:
        notices.deliver_soon()
    except ServiceUnavailable as exc:
        log.warning("purge notices left for the servers to deliver: %s", exc.detail)


def check_consistency(settings: Settings, repair: bool) -> list[Finding]:
    """Compare the registry with the data directory; with ``repair``, fix what is found."""
    blobs, registry = _open_storage(settings)
    try:
        # The service makes a missing reduced copy again, as a backfill does.
        rebuild = _service(settings, registry, blobs, PrometheusMetrics()).rebuild_reduced
        # A repair that finishes deleting an original tells the CDN, as a DELETE does; a check sends nothing.
        notices = _notices(settings, registry, PrometheusMetrics()) if repair else None
        repairer = Repairer(
            settings, registry, blobs, _inventory(blobs), rebuild_reduced=rebuild, notices=notices
        )
        findings = repairer.run(repair)
        if notices is not None and findings:
            _deliver_before_exit(notices)
        return findings
    finally:
        registry.dispose()


def backfill(settings: Settings, progress: Callable[[int, int], None] | None = None) -> BackfillReport:
    """Give every original stored before pymager made reduced copies (or recorded its traits, upright
    size and ThumbHash) its copies and facts (``ImageService.backfill``): resumable, and safe beside
    running servers. ``progress(done, total)`` is called before the first original and after each."""
    blobs, registry = _open_storage(settings)
    try:
        return _service(settings, registry, blobs, PrometheusMetrics()).backfill(progress)
    finally:
        registry.dispose()


def purge_derived(settings: Settings, image_ids: list[str] | None) -> list[str]:
    """Remove the derived images of ``image_ids`` (of every original when ``None``) so that they are made
    again with the current pipeline; return their keys. Raises ``InvalidImageId`` for a bad id."""
    ids = None if image_ids is None else {ImageId(image_id) for image_id in image_ids}
    blobs, registry = _open_storage(settings)
    try:
        notices = _notices(settings, registry, PrometheusMetrics())
        purged = Repairer(settings, registry, blobs, _inventory(blobs), notices=notices).purge_derived(ids)
        if notices is not None and purged:
            _deliver_before_exit(notices)
    finally:
        registry.dispose()
    return [spec.key for spec in purged]


def database_label(settings: Settings) -> str:
    """The registry's URL for messages and logs: as configured, its password masked."""
    return shown_url(settings.database_url)


def migrate_database(settings: Settings) -> str:
    """Apply every pending migration; return the revision the database is now at."""
    shown = shown_url(settings.database_url)
    try:
        engine_url(settings.database_url)
    except UnsupportedDatabaseURL as exc:
        raise StartupError(f"database_url = {shown!r}: {exc}") from None
    try:
        settings.data_directory.mkdir(parents=True, exist_ok=True)
        _prepare_sqlite_directory(settings.database_url)
        migrate.upgrade(settings.database_url)
    except OSError as exc:
        raise StartupError(f"data_directory = {str(settings.data_directory)!r}: {exc.strerror}") from None
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"database_url = {shown!r}: {first_line}") from None
    return migrate.head_revision()


class RegistryPlugin(SimplePlugin):  # type: ignore[misc]  # CherryPy ships no type hints
    """Closes the registry's connection pool when the CherryPy engine stops."""

    def __init__(self, bus: cherrypy.process.wspbus.Bus, registry: SqlRegistry) -> None:
        super().__init__(bus)
        self._registry = registry

    def stop(self) -> None:
        self._registry.dispose()


class PurgePlugin(SimplePlugin):  # type: ignore[misc]  # CherryPy ships no type hints
    """Runs the deliverer of CDN purge notices (``PurgeNotices.run``) in a thread while the engine runs."""

    def __init__(self, bus: cherrypy.process.wspbus.Bus, notices: PurgeNotices) -> None:
        super().__init__(bus)
        self._notices = notices
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._notices.run, args=(self._stopping,), name="pymager-purge", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._notices.stop(self._stopping)
            thread.join(timeout=15)

    stop.priority = 40  # type: ignore[attr-defined]  # before RegistryPlugin closes the pool it delivers through


def make_wsgi_app(ini_path: str | Path) -> cherrypy.Application:
    """The WSGI application for a configuration file (used by ``deploy/apache/pymager.wsgi``)."""
    try:
        settings = load_settings(Path(ini_path))
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    components = build(settings)
    # CherryPy's setting for a WSGI host (mod_wsgi): no autoreload, no signal handlers, and no access
    # log on stderr (the host logs requests; pymager's warnings and errors still reach its error log).
    cherrypy.config.update({"environment": "embedded"})
    RegistryPlugin(cherrypy.engine, components.registry).subscribe()
    if components.notices is not None:
        # mod_wsgi never starts CherryPy's engine: the deliverer starts here, a daemon thread.
        purging = PurgePlugin(cherrypy.engine, components.notices)
        purging.subscribe()
        purging.start()
    application = make_app(components.service, components.metrics, settings)
    tune_process()
    return application
