"""The flags of ``pymager_standalone.py``, kept as they always were:

    pymager_standalone.py [--config PATH]
                          [--migrate | --check | --repair | --hash-key | --sign PATH
                           | --purge-derived (ID… | --all)]

The same actions as ``pymager <subcommand>`` (``pymager.cli.admin``); ``pymager`` itself also takes
these flags (``pymager --config X --migrate``), so deployments written for them keep working.
"""

from __future__ import annotations

import argparse
import sys

FLAGS = frozenset(
    {"--config", "--migrate", "--check", "--repair", "--hash-key", "--sign", "--purge-derived", "--all"}
)


def parser() -> argparse.ArgumentParser:
    parsing = argparse.ArgumentParser(description="pymager: a RESTful image storage service")
    parsing.add_argument("--config", help="configuration file (default: $PYMAGER_CONFIG, else ./pymager.ini)")
    action = parsing.add_mutually_exclusive_group()
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
    parsing.add_argument("--all", action="store_true", help="with --purge-derived: of every original")
    return parsing


def main(argv: list[str] | None = None) -> int:
    parsing = parser()
    args = parsing.parse_args(argv)
    if args.purge_derived is not None and bool(args.purge_derived) == args.all:
        parsing.error("--purge-derived takes image ids or --all")
    if args.all and args.purge_derived is None:
        parsing.error("--all goes with --purge-derived")
    actions = (args.hash_key, args.sign, args.migrate, args.check, args.repair, args.purge_derived)
    if all(action in (False, None) for action in actions):
        from pymager.cli import workers  # light: with [server] processes, the workers load the server

        return workers.serve(args.config)
    from pymager.cli import admin  # the server: loaded only when these flags are used

    if args.hash_key:
        return admin.hash_key(sys.stdin)
    if args.sign is not None:
        return admin.with_settings(args.config, lambda settings: admin.sign(settings, args.sign))
    if args.migrate:
        return admin.with_settings(args.config, admin.migrate)
    if args.check or args.repair:
        return admin.with_settings(args.config, lambda settings: admin.check(settings, args.repair))
    if args.purge_derived is not None:
        ids = None if args.all else list(args.purge_derived)
        return admin.with_settings(args.config, lambda settings: admin.purge(settings, ids))
    raise AssertionError("every action is handled above")
