"""The server-side subcommands: each runs one action of ``pymager.cli.admin`` on the configuration."""

from __future__ import annotations

import sys

import click

config_option = click.option(
    "--config",
    "config",
    metavar="PATH",
    default=None,
    help="configuration file (default: $PYMAGER_CONFIG, else ./pymager.ini)",
)


@click.command("serve")
@config_option
def serve_command(config: str | None) -> int:
    """Serve on CherryPy's HTTP server until SIGTERM or SIGINT."""
    from pymager.cli import workers  # light: with [server] processes, the workers load the server

    return workers.serve(config)


@click.command("migrate")
@config_option
def migrate_command(config: str | None) -> int:
    """Apply the database migrations."""
    from pymager.cli import admin

    return admin.with_settings(config, admin.migrate)


@click.command("check")
@config_option
def check_command(config: str | None) -> int:
    """Report what crashes left inconsistent (exit 1 if anything is damaged)."""
    from pymager.cli import admin

    return admin.with_settings(config, lambda settings: admin.check(settings, repair=False))


@click.command("repair")
@config_option
def repair_command(config: str | None) -> int:
    """Like check, and repair what is found."""
    from pymager.cli import admin

    return admin.with_settings(config, lambda settings: admin.check(settings, repair=True))


@click.command("hash-key")
def hash_key_command() -> int:
    """Read an API key from stdin; print its sha256:<hex> entry for [auth] api_keys."""
    from pymager.cli import admin

    return admin.hash_key(sys.stdin)


@click.command("sign")
@config_option
@click.argument("path")
def sign_command(config: str | None, path: str) -> int:
    """Print PATH (/derived/<segment>, as it will be requested) signed with the first url key."""
    from pymager.cli import admin

    return admin.with_settings(config, lambda settings: admin.sign(settings, path))


@click.command("purge-derived")
@config_option
@click.option("--all", "everything", is_flag=True, help="the derived images of every original")
@click.argument("image_ids", metavar="[ID]...", nargs=-1)
def purge_derived_command(config: str | None, everything: bool, image_ids: tuple[str, ...]) -> int:
    """Remove the derived images of these originals (or of all) so that they are made again with the
    current pipeline, safely beside running servers."""
    if bool(image_ids) == everything:
        raise click.UsageError("purge-derived takes image ids or --all")
    from pymager.cli import admin

    ids = None if everything else list(image_ids)
    return admin.with_settings(config, lambda settings: admin.purge(settings, ids))


@click.command("backfill")
@config_option
def backfill_command(config: str | None) -> int:
    """Give originals stored by an older pymager their reduced copies, traits, upright size and
    ThumbHash: resumable, and safe beside running servers."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pymager.cli import admin

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = bar.add_task("backfill", total=None)

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        return admin.with_settings(config, lambda settings: admin.backfill(settings, progress))


server_commands = [
    serve_command,
    migrate_command,
    check_command,
    repair_command,
    hash_key_command,
    sign_command,
    purge_derived_command,
    backfill_command,
]
