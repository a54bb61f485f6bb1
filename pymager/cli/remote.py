"""The subcommands that talk to a running pymager through its HTTP API (``pymager.client``): import,
pregenerate, info, ls, rm. ``--url`` and ``--key`` may come from ``$PYMAGER_URL`` and ``$PYMAGER_KEY``;
the key is sent on every request. Exit status 1 when anything failed, 130 when interrupted."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pymager.cli import importer
from pymager.client import ClientError, derived_path
from pymager.client.session import Client

_F = TypeVar("_F", bound=Callable[..., Any])


def remote_options(command: _F) -> _F:
    command = click.option(
        "--key",
        envvar="PYMAGER_KEY",
        default=None,
        help="API key, sent as Authorization: Bearer [env PYMAGER_KEY]",
    )(command)
    return click.option(
        "--url",
        envvar="PYMAGER_URL",
        required=True,
        help="the server, e.g. http://localhost:8000 [env PYMAGER_URL]",
    )(command)


def _client(url: str, key: str | None, jobs: int = 1, url_keys: str | None = None) -> Client:
    try:
        return Client(url, key=key, url_keys=url_keys or None, max_connections=max(jobs, 1))
    except ValueError as exc:  # malformed url keys
        raise click.BadParameter(str(exc), param_hint="--url-keys") from None


def _error(message: str) -> None:
    click.echo(f"pymager: {message}", err=True)


# import


@click.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@remote_options
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True, help="uploads at once"
)
@click.option("--strict", is_flag=True, help="exit 1 when any file was skipped (not an image, id collision)")
@click.option("--verbose", "-v", is_flag=True, help="a line for every file, stored ones too")
def import_command(directory: Path, url: str, key: str | None, jobs: int, strict: bool, verbose: bool) -> int:
    """Upload the images under DIRECTORY, ids from their relative paths (a/b c.jpg → a-b_c).

    Resumable: run it again after an interruption; images already stored with the same bytes count as
    done. Files that are not images are skipped, with the server's reason."""
    found = importer.plan(directory)
    console = Console()
    with _client(url, key, jobs) as client, _progress(console) as progress:
        task = progress.add_task("import", total=found.bytes, files=f"0/{len(found.entries)} files")
        done = 0

        def report(result: importer.Result, entry: importer.Entry | None) -> None:
            nonlocal done
            if result.outcome not in (importer.Outcome.STORED, importer.Outcome.ALREADY) or verbose:
                progress.console.print(result.line(), markup=False, highlight=False, soft_wrap=True)
            if entry is not None:  # an upload tried, not a file skipped before any
                done += 1
                progress.update(task, advance=entry.size, files=f"{done}/{len(found.entries)} files")

        tally = importer.run(client, found, jobs, report)
    for line in tally.summary():
        click.echo(line)
    return tally.exit_status(strict)


def _progress(console: Console) -> Progress:
    """Files, bytes, rate and ETA; drawn only on a terminal (a log gets the lines and the summary)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[files]}"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


# pregenerate


def _sizes(text: str) -> list[tuple[int, int, str | None]]:
    sizes = []
    for part in (part.strip() for part in text.split(",") if part.strip()):
        size, _, mode = part.partition("-")
        width, x, height = size.partition("x")
        if not (x and width.isdigit() and height.isdigit()):
            raise click.BadParameter(f"{part!r} is not <W>x<H>[-fit|-pad]", param_hint="--sizes")
        entry = (int(width), int(height), mode or None)
        try:
            derived_path("x", *entry[:2], "jpg", entry[2])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--sizes") from None
        sizes.append(entry)
    if not sizes:
        raise click.BadParameter("name at least one size", param_hint="--sizes")
    return sizes


@click.command("pregenerate")
@remote_options
@click.option("--sizes", required=True, help="comma-separated <W>x<H>[-fit|-pad], e.g. 200x200,800x0-fit")
@click.option("--formats", default="jpg", show_default=True, help="comma-separated extensions: jpg,webp")
@click.option("--all", "everything", is_flag=True, help="every original (from the listing)")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--url-keys", envvar="PYMAGER_URL_KEYS", default=None, help="sign with <key-id>:<secret>")
@click.argument("image_ids", metavar="[ID]...", nargs=-1)
def pregenerate_command(
    url: str,
    key: str | None,
    sizes: str,
    formats: str,
    everything: bool,
    jobs: int,
    url_keys: str | None,
    image_ids: tuple[str, ...],
) -> int:
    """Have the server make these derived images now, ahead of traffic."""
    if bool(image_ids) == everything:
        raise click.UsageError("pregenerate takes image ids or --all")
    boxes = _sizes(sizes)
    extensions = [ext.strip() for ext in formats.split(",") if ext.strip()]
    for ext in extensions:
        try:
            derived_path("x", 1, 1, ext)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--formats") from None
    console = Console()
    failed = refused = 0
    with _client(url, key, jobs, url_keys) as client:
        try:
            ids = [item["id"] for item in client.iter_originals()] if everything else list(image_ids)
        except ClientError as exc:
            _error(f"listing the originals: {exc}")
            return 1
        work: list[tuple[str, int, int, str, str | None]] = []
        for image_id in ids:
            try:
                derived_path(image_id, 1, 1, "jpg")
            except ValueError as exc:
                refused += len(boxes) * len(extensions)
                _error(f"{image_id}: {exc}")
                continue
            work += [(image_id, w, h, ext, mode) for w, h, mode in boxes for ext in extensions]
        with _progress(console) as progress:
            task = progress.add_task("pregenerate", total=len(work), files=f"0/{len(work)} images")
            pool = ThreadPoolExecutor(max_workers=jobs)
            try:
                futures = {pool.submit(client.pregenerate, *item): derived_path(*item) for item in work}
                for count, future in enumerate(as_completed(futures), start=1):
                    try:
                        future.result()
                    except ClientError as exc:
                        failed += 1
                        line = f"failed: {futures[future]}: {exc}"
                        progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
                    progress.update(task, advance=1, files=f"{count}/{len(work)} images")
            finally:  # Ctrl-C: what is queued is dropped, the requests in flight end
                pool.shutdown(wait=True, cancel_futures=True)
    made, total = len(work) - failed, len(work) + refused
    click.echo(f"pymager pregenerate: {made} of {total} derived image(s) made or stored")
    return 1 if failed or refused else 0


# info, ls, rm


@click.command("info")
@remote_options
@click.argument("image_id", metavar="ID")
def info_command(url: str, key: str | None, image_id: str) -> int:
    """Print what the server knows of the original ID, as JSON."""
    with _client(url, key) as client:
        try:
            click.echo(json.dumps(client.info(image_id), indent=2))
        except ClientError as exc:
            _error(str(exc))
            return 1
    return 0


@click.command("ls")
@remote_options
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
@click.option("--page", type=click.IntRange(1, 1000), default=100, show_default=True, help="page size")
def ls_command(url: str, key: str | None, as_json: bool, page: int) -> int:
    """List every original: id, format, width x height, bytes, created."""
    with _client(url, key) as client:
        try:
            for item in client.iter_originals(limit=page):
                if as_json:
                    click.echo(json.dumps(item))
                else:
                    size = f"{item['width']}x{item['height']}"
                    click.echo(f"{item['id']}\t{item['format']}\t{size}\t{item['bytes']}\t{item['created']}")
        except ClientError as exc:
            _error(str(exc))
            return 1
    return 0


@click.command("rm")
@remote_options
@click.argument("image_ids", metavar="ID...", nargs=-1, required=True)
def rm_command(url: str, key: str | None, image_ids: tuple[str, ...]) -> int:
    """Delete these originals and their derived images."""
    failed = 0
    with _client(url, key) as client:
        for image_id in image_ids:
            try:
                client.delete(image_id)
                click.echo(f"deleted {image_id}")
            except ClientError as exc:
                failed += 1
                _error(f"{image_id}: {exc}")
    return 1 if failed else 0
