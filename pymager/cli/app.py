"""The ``pymager`` command's click group (``pymager.cli.main`` runs it). The client subcommands (import,
pregenerate, info, ls, rm) and what they need (httpx, rich) load only when one of them runs, and the
server's only when a server subcommand does: a server process keeps neither the other's code nor its
memory (about 5.5 MB for the client's)."""

from __future__ import annotations

import sys

import click

from pymager.cli import legacy
from pymager.cli.server import server_commands

# name → the click command of pymager.cli.remote that runs it
_REMOTE = {
    "import": "import_command",
    "pregenerate": "pregenerate_command",
    "info": "info_command",
    "ls": "ls_command",
    "rm": "rm_command",
}


class _Commands(click.Group):
    """The server subcommands, and the client ones imported when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_REMOTE])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _REMOTE:
            from pymager.cli import remote

            command: click.Command = getattr(remote, _REMOTE[name])
            return command
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pymager: a RESTful image storage service, and a client of it."""


for command in server_commands:
    cli.add_command(command)


def _is_legacy(args: list[str]) -> bool:
    """``pymager --config X --migrate``: the flags of ``pymager_standalone.py``, no subcommand."""
    names = {*cli.commands, *_REMOTE}
    return bool(args) and args[0] in legacy.FLAGS and not any(arg in names for arg in args)


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
