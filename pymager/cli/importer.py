"""``pymager import DIR``: a directory tree uploaded concurrently, resumably.

Ids come from the paths relative to DIR (``image_id_for``): the path without its file's extension,
``/`` as ``-``, any other character outside ``[A-Za-z0-9_-]`` as ``_``; past 128 characters the file is
skipped, never truncated (two long paths sharing 128 characters would silently become one image).
Hidden files and directories (a name starting with ``.``) are not imported. Files whose ids collide
(``a b.jpg`` and ``a_b.png``) are reported; the first in path order is imported, the others skipped, so
a rerun decides the same way.

Resumable: an upload answered 409 is compared by SHA-256 with what is stored: the same bytes count as
already there, other bytes as a conflict. So a run interrupted (Ctrl-C) and run again stores every image
exactly once; an upload cut off mid-way stores nothing on the server, which publishes an original whole
or not at all.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pymager.client import (
    ClientError,
    CorruptImage,
    DecodingLimit,
    ImageAlreadyExists,
    ImageNotFound,
    ProblemError,
    Unauthorized,
    UnsupportedImage,
)
from pymager.client.session import Client

MAX_ID = 128
_OUTSIDE_ID = re.compile(r"[^A-Za-z0-9_-]")
# What the server says of a file that is no image it stores: skipped, not failed (unless --strict).
NOT_AN_IMAGE: tuple[type[ProblemError], ...] = (UnsupportedImage, CorruptImage, DecodingLimit)


class Outcome(enum.Enum):
    STORED = "stored"
    ALREADY = "already stored"
    SKIPPED = "skipped"
    CONFLICT = "conflict"
    FAILED = "failed"


@dataclass(frozen=True)
class Entry:
    """One file to upload: its path, its path relative to the tree (as shown), its id and size."""

    path: Path
    relative: str
    image_id: str
    size: int


@dataclass(frozen=True)
class Result:
    relative: str
    image_id: str | None
    outcome: Outcome
    reason: str = ""

    def line(self) -> str:
        named = f" (id {self.image_id})" if self.image_id else ""
        return f"{self.outcome.value}: {self.relative}{named}{': ' + self.reason if self.reason else ''}"


def image_id_for(relative: PurePosixPath) -> str:
    """The id of the file at ``relative``; ``ValueError`` past ``MAX_ID`` characters."""
    stem = relative.with_suffix("") if relative.suffix else relative
    image_id = _OUTSIDE_ID.sub("_", stem.as_posix().replace("/", "-"))
    if len(image_id) > MAX_ID:
        raise ValueError(f"its id would be {len(image_id)} characters, over {MAX_ID}")
    return image_id


def _files(directory: Path) -> Iterator[Path]:
    for root, directories, names in os.walk(directory):
        directories[:] = sorted(name for name in directories if not name.startswith("."))
        for name in sorted(names):
            path = Path(root, name)
            if not name.startswith(".") and path.is_file():
                yield path


@dataclass
class Plan:
    """What a tree holds: the files to upload, and the files skipped before any upload."""

    entries: list[Entry] = field(default_factory=list)
    skipped: list[Result] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(entry.size for entry in self.entries)


def plan(directory: Path) -> Plan:
    found = Plan()
    first_of: dict[str, str] = {}
    for path in sorted(_files(directory), key=lambda p: p.relative_to(directory).as_posix()):
        relative = path.relative_to(directory).as_posix()
        try:
            image_id = image_id_for(PurePosixPath(relative))
        except ValueError as exc:
            found.skipped.append(Result(relative, None, Outcome.SKIPPED, str(exc)))
            continue
        if image_id in first_of:
            reason = f"id collision: {first_of[image_id]} has the same id"
            found.skipped.append(Result(relative, image_id, Outcome.SKIPPED, reason))
            continue
        first_of[image_id] = relative
        found.entries.append(Entry(path, relative, image_id, path.stat().st_size))
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


class Fatal(Exception):
    """A failure every further upload would share (a refused key): the run stops."""


def import_one(client: Client, entry: Entry) -> Result:
    def result(outcome: Outcome, reason: str = "") -> Result:
        return Result(entry.relative, entry.image_id, outcome, reason)

    try:
        client.upload(entry.image_id, entry.path)
        return result(Outcome.STORED)
    except ImageAlreadyExists:
        pass
    except NOT_AN_IMAGE as exc:
        return result(Outcome.SKIPPED, f"{exc.problem}: {exc.detail}")
    except Unauthorized as exc:
        raise Fatal(f"the server refused the key: {exc.detail}") from None
    except ClientError as exc:
        return result(Outcome.FAILED, str(exc))
    try:
        stored = client.sha256(entry.image_id)
    except ImageNotFound:
        return result(Outcome.FAILED, "deleted on the server while it was compared; run again")
    except ClientError as exc:
        return result(Outcome.FAILED, f"stored already, and could not be compared: {exc}")
    if stored == sha256_of(entry.path):
        return result(Outcome.ALREADY)
    return result(Outcome.CONFLICT, f"stored with other content (sha256 {stored[:16]}…)")


@dataclass
class Tally:
    files: int
    counts: Counter[Outcome] = field(default_factory=Counter)
    interrupted: bool = False
    fatal: str = ""

    def add(self, result: Result) -> None:
        self.counts[result.outcome] += 1

    @property
    def not_done(self) -> int:
        return self.files - sum(self.counts.values())

    def exit_status(self, strict: bool) -> int:
        if self.interrupted:
            return 130
        failed = self.counts[Outcome.FAILED] + self.counts[Outcome.CONFLICT] + self.not_done
        if failed or self.fatal or (strict and self.counts[Outcome.SKIPPED]):
            return 1
        return 0

    def summary(self) -> list[str]:
        lines = [f"pymager import: {self.files} file(s)"]
        lines += [f"  {outcome.value:<16}{self.counts[outcome]:>8}" for outcome in Outcome]
        lines.append(f"  {'not done':<16}{self.not_done:>8}")
        if self.fatal:
            lines.append(f"stopped: {self.fatal}")
        if self.interrupted:
            lines.append("interrupted: run the same command again to finish")
        return lines


def run(
    client: Client,
    found: Plan,
    jobs: int,
    report: Callable[[Result, Entry | None], None],
) -> Tally:
    """Upload ``found.entries`` on ``jobs`` threads; ``report(result, entry)`` is called in this thread
    for each file as it is done (first the files skipped before any upload, with no entry). Ctrl-C
    stops submitting, lets the uploads in flight end (each is stored whole or not at all) and returns a
    tally marked interrupted."""
    tally = Tally(len(found.entries) + len(found.skipped))
    for skipped in found.skipped:
        tally.add(skipped)
        report(skipped, None)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pymager-import")
    futures = {pool.submit(import_one, client, entry): entry for entry in found.entries}
    recorded: set[Future[Result]] = set()

    def record(future: Future[Result]) -> None:
        recorded.add(future)
        try:
            result = future.result()
        except Fatal as exc:
            tally.fatal = tally.fatal or str(exc)
            return
        tally.add(result)
        report(result, futures[future])

    try:
        for future in as_completed(futures):
            record(future)
            if tally.fatal:
                break
    except KeyboardInterrupt:
        tally.interrupted = True
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    # The uploads in flight: waited for, so that what they did is counted and none is cut off mid-way.
    for future in futures:
        if future not in recorded and not future.cancelled():
            record(future)
    pool.shutdown(wait=True)
    return tally
