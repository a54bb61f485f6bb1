"""The operator's actions on one configuration: serve, migrate, check/repair, sign, purge derived
images, hash a key. Both command lines call these: ``pymager <subcommand>`` and the flags of
``pymager_standalone.py`` (``pymager.cli.legacy``). Each returns the process's exit status; a
configuration or start-up failure is one line on stderr and status 2.

Imported only by the commands that need it: it loads CherryPy, SQLAlchemy and Pillow, which the
client commands (``pymager ls``) have no use for.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from typing import TextIO

import cherrypy

from pymager.bootstrap import (
    PurgePlugin,
    RegistryPlugin,
    StartupError,
    build,
    check_consistency,
    database_label,
    migrate_database,
    purge_derived,
    tune_process,
)
from pymager.bootstrap import (
    backfill as run_backfill,
)
from pymager.config import ConfigError, Settings, config_path, hash_api_key, load_settings
from pymager.errors import PymagerError
from pymager.signing import UrlSigner
from pymager.web.app import make_app
from pymager.web.deadlines import DeadlineServer
from pymager.web.listener import HTTPServerPlugin, SharedSocketServer

log = logging.getLogger("pymager")


def with_settings(config: str | None, action: Callable[[Settings], int]) -> int:
    """Load the configuration (``config``, else ``$PYMAGER_CONFIG``, else ``./pymager.ini``) and run
    ``action`` on it; what stops either is one line on stderr and status 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return guarded(lambda: action(load_settings(config_path(config))))


def guarded(action: Callable[[], int]) -> int:
    """``action()``; what stops it is one line on stderr and status 2."""
    try:
        return action()
    except (ConfigError, StartupError) as exc:
        print(f"pymager: {exc}", file=sys.stderr)
        return 2
    except PymagerError as exc:  # a bad id for purge-derived, an unusable registry or store
        print(f"pymager: {exc.detail}", file=sys.stderr)
        return 2


def server_config(settings: Settings) -> dict[str, object]:
    return {
        "environment": "production",
        "engine.autoreload.on": False,
        "log.screen": False,  # CherryPy's loggers propagate to the logging set up in with_settings
        "server.socket_host": settings.host,
        "server.socket_port": settings.port,
        "server.thread_pool": settings.thread_pool,
        "server.socket_timeout": settings.socket_timeout,
        "server.socket_queue_size": 128,  # cheroot's default of 5 resets bursts of connections
        # The application enforces max_upload_bytes with a JSON 413; cheroot's own limit answers in
        # plain text, so it is left off.
        "server.max_request_body_size": 0,
    }


def serve(
    settings: Settings, listener: socket.socket | None = None, ready: Callable[[], None] | None = None
) -> int:
    """Serve until the engine stops (SIGTERM, SIGINT): on ``[server] host:port``, or as one worker of
    ``[server] processes`` on ``listener``, its parent's socket (``pymager.cli.workers``), calling
    ``ready`` once it serves."""
    components = build(settings)
    cherrypy.config.update(server_config(settings))
    # cheroot with request deadlines (header_timeout, min_body_rate): pymager/web/deadlines.py
    if listener is None:
        cherrypy.server.httpserver = DeadlineServer(
            cherrypy.server, settings.header_timeout, settings.min_body_rate
        )
        host, port = settings.host, settings.port
    else:
        cherrypy.server.unsubscribe()  # its port checks cannot hold on a shared socket
        shared = SharedSocketServer(
            cherrypy.server, settings.header_timeout, settings.min_body_rate, listener
        )
        HTTPServerPlugin(cherrypy.engine, shared).subscribe()
        host, port = listener.getsockname()[:2]
    cherrypy.tree.mount(make_app(components.service, components.metrics, settings))
    RegistryPlugin(cherrypy.engine, components.registry).subscribe()
    if components.notices is not None:
        PurgePlugin(cherrypy.engine, components.notices).subscribe()
    cherrypy.engine.signals.subscribe()
    log.info("pymager serving %s on http://%s:%d/", settings.data_directory, host, port)
    tune_process()
    cherrypy.engine.start()
    if ready is not None:
        ready()
    cherrypy.engine.block()
    return 0


def migrate(settings: Settings) -> int:
    revision = migrate_database(settings)
    print(f"pymager: database at revision {revision} ({database_label(settings)})")
    return 0


def check(settings: Settings, repair: bool) -> int:
    """Exit 1 when the check finds damage (``--repair`` repairs it); facts that are not damage (originals
    not yet backfilled) are printed, never an error."""
    findings = check_consistency(settings, repair)
    damage = [finding for finding in findings if finding.damage]
    for finding in findings:
        repaired = " (repaired)" if repair and finding.damage else ""
        print(f"{finding}{repaired}" if finding.damage else f"note: {finding}")
    print(f"pymager: {len(damage)} problem(s) found{', all repaired' if repair and damage else ''}")
    return 1 if damage and not repair else 0


def backfill(settings: Settings, progress: Callable[[int, int], None] | None = None) -> int:
    """Give the originals stored before pymager made reduced copies and recorded their facts what they
    lack; exit 1 if any failed (each is named)."""
    report = run_backfill(settings, progress)
    for image_id, reason in sorted(report.failed.items()):
        print(f"pymager: {image_id}: {reason}")
    print(
        f"pymager: {report.backfilled} original(s) backfilled, {report.gone} gone meanwhile, "
        f"{len(report.failed)} failed"
    )
    return 1 if report.failed else 0


def purge(settings: Settings, image_ids: list[str] | None) -> int:
    purged = purge_derived(settings, image_ids)
    for key in purged:
        print(f"purged {key}")
    print(f"pymager: {len(purged)} derived image(s) purged; they are made again on their next request")
    return 0


def sign(settings: Settings, path: str) -> int:
    if not settings.url_keys:
        print("pymager: no url key to sign with; set [auth] url_keys or $PYMAGER_URL_KEYS", file=sys.stderr)
        return 2
    if not path.startswith("/derived/") or "?" in path or "#" in path:
        print(
            f"pymager: sign a path as it is requested, /derived/<segment>; got {path[:200]!r}",
            file=sys.stderr,
        )
        return 2
    print(UrlSigner(settings.url_keys).sign(path))
    return 0


def hash_key(stdin: TextIO) -> int:
    """Read a key from the first line of ``stdin``; print its ``sha256:<hex>`` entry. No configuration."""
    key = stdin.readline().rstrip("\r\n")
    if not key:
        print("pymager: no key on stdin", file=sys.stderr)
        return 2
    print(hash_api_key(key))
    return 0
