"""The ``pymager`` command: one program, a subcommand per action.

    pymager serve | migrate | check | repair | hash-key | sign PATH | purge-derived (ID… | --all)
    pymager import DIR | pregenerate | info ID | ls | rm ID…      (through the HTTP API: --url, --key)

Built on click: explicit groups and options, typed, its own exit codes; the server-side subcommands
import the server (``pymager.cli.admin``) only when run, so the client ones start fast. The flags of
``pymager_standalone.py`` are still understood (``pymager --config X --migrate``).
"""

from __future__ import annotations

import sys

import click

from pymager.cli import legacy
from pymager.cli.remote import import_command, info_command, ls_command, pregenerate_command, rm_command
from pymager.cli.server import server_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pymager: a RESTful image storage service, and a client of it."""


for command in [
    *server_commands,
    import_command,
    pregenerate_command,
    info_command,
    ls_command,
    rm_command,
]:
    cli.add_command(command)


def _is_legacy(args: list[str]) -> bool:
    """``pymager --config X --migrate``: the flags of ``pymager_standalone.py``, no subcommand."""
    return bool(args) and args[0] in legacy.FLAGS and not any(arg in cli.commands for arg in args)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if _is_legacy(args):
        return legacy.main(args)
    try:
        status = cli.main(args, prog_name="pymager", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except click.ClickException as exc:  # a usage error
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        return 130
    return status if isinstance(status, int) else 0
