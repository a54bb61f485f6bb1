#!/usr/bin/env python3
"""Run pymager on CherryPy's own HTTP server.

    pymager_standalone.py [--config PATH]
                          [--migrate | --check | --repair | --hash-key | --sign PATH
                           | --purge-derived (ID… | --all)]

The configuration file is PATH, else ``$PYMAGER_CONFIG``, else ``./pymager.ini``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import cherrypy

from pymager.bootstrap import (
    RegistryPlugin,
    StartupError,
    build,
    check_consistency,
    database_label,
    migrate_database,
    purge_derived,
    tune_process,
)
from pymager.config import ConfigError, Settings, config_path, hash_api_key, load_settings
from pymager.errors import PymagerError
from pymager.signing import UrlSigner
from pymager.web.app import make_app
from pymager.web.deadlines import DeadlineServer

log = logging.getLogger("pymager")


def _server_config(settings: Settings) -> dict[str, object]:
    return {
        "environment": "production",
        "engine.autoreload.on": False,
        "log.screen": False,  # CherryPy's loggers propagate to the logging set up in main()
        "server.socket_host": settings.host,
        "server.socket_port": settings.port,
        "server.thread_pool": settings.thread_pool,
        "server.socket_timeout": settings.socket_timeout,
        "server.socket_queue_size": 128,  # cheroot's default of 5 resets bursts of connections
        # The application enforces max_upload_bytes with a JSON 413; cheroot's own limit answers in
        # plain text, so it is left off.
        "server.max_request_body_size": 0,
    }


def _check(settings: Settings, repair: bool) -> int:
    findings = check_consistency(settings, repair)
    for finding in findings:
        print(f"{finding}{' (repaired)' if repair else ''}")
    print(f"pymager: {len(findings)} problem(s) found{', all repaired' if repair and findings else ''}")
    return 1 if findings and not repair else 0


def _purge(settings: Settings, image_ids: list[str] | None) -> int:
    purged = purge_derived(settings, image_ids)
    for key in purged:
        print(f"purged {key}")
    print(f"pymager: {len(purged)} derived image(s) purged; they are made again on their next request")
    return 0


def _sign(settings: Settings, path: str) -> int:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pymager: a RESTful image storage service")
    parser.add_argument("--config", help="configuration file (default: $PYMAGER_CONFIG, else ./pymager.ini)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--migrate", action="store_true", help="apply database migrations, then exit")
    action.add_argument(
        "--check",
        action="store_true",
        help="report what crashes left inconsistent (exit 1 if anything), then exit",
    )
    action.add_argument("--repair", action="store_true", help="like --check, and repair what is found")
    action.add_argument(
        "--hash-key",
        action="store_true",
        help="read an API key from stdin, print the sha256:<hex> entry for [auth] api_keys, then exit",
    )
    action.add_argument(
        "--sign",
        metavar="PATH",
        help="print the derived path PATH (/derived/<segment>, as it will be requested) signed with the "
        "first of the url keys, then exit",
    )
    action.add_argument(
        "--purge-derived",
        nargs="*",
        metavar="ID",
        help="remove the derived images of these originals (or of all, with --all) so that they are made "
        "again with the current pipeline, safely beside running servers; then exit",
    )
    parser.add_argument("--all", action="store_true", help="with --purge-derived: of every original")
    args = parser.parse_args(argv)
    if args.purge_derived is not None and bool(args.purge_derived) == args.all:
        parser.error("--purge-derived takes image ids or --all")
    if args.all and args.purge_derived is None:
        parser.error("--all goes with --purge-derived")
    if args.hash_key:
        key = sys.stdin.readline().rstrip("\r\n")
        if not key:
            print("pymager: no key on stdin", file=sys.stderr)
            return 2
        print(hash_api_key(key))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        path = config_path(args.config)
        settings = load_settings(path)
        if args.sign is not None:
            return _sign(settings, args.sign)
        if args.migrate:
            revision = migrate_database(settings)
            print(f"pymager: database at revision {revision} ({database_label(settings)})")
            return 0
        if args.check or args.repair:
            return _check(settings, repair=args.repair)
        if args.purge_derived is not None:
            return _purge(settings, None if args.all else args.purge_derived)
        components = build(settings)
    except (ConfigError, StartupError) as exc:
        print(f"pymager: {exc}", file=sys.stderr)
        return 2
    except PymagerError as exc:  # a bad id for --purge-derived, an unusable registry or store
        print(f"pymager: {exc.detail}", file=sys.stderr)
        return 2

    cherrypy.config.update(_server_config(settings))
    # cheroot with request deadlines (header_timeout, min_body_rate): pymager/web/deadlines.py
    cherrypy.server.httpserver = DeadlineServer(
        cherrypy.server, settings.header_timeout, settings.min_body_rate
    )
    cherrypy.tree.mount(make_app(components.service, components.metrics, settings))
    RegistryPlugin(cherrypy.engine, components.registry).subscribe()
    cherrypy.engine.signals.subscribe()
    log.info("pymager serving %s on http://%s:%d/", settings.data_directory, settings.host, settings.port)
    tune_process()
    cherrypy.engine.start()
    cherrypy.engine.block()
    return 0


if __name__ == "__main__":
    sys.exit(main())
