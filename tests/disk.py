"""A small real filesystem for the disk-full tests: a tmpfs the test mounts (root only), fills with filler
files, empties and remounts read-only. Every mount is undone when its context ends."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from tests.conftest import service_missing
from tests.images import encode

FILLER_PREFIX = "filler-"
_PAGE = 4096


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def small_filesystem(mountpoint: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted on ``mountpoint`` (created), unmounted and removed afterwards.
    Skipped (failed under ``PYMAGER_REQUIRE_SERVICES=1``) where it cannot be mounted."""
    if os.geteuid() != 0:
        service_missing("mounting a small tmpfs needs root")
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint))
    if mounted.returncode != 0:
        mountpoint.rmdir()
        service_missing(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if _run("umount", str(mountpoint)).returncode != 0:
            _run("umount", "-l", str(mountpoint))  # still busy (a server being stopped): detach it
        mountpoint.rmdir()


def remount(mountpoint: Path, mode: str) -> None:
    """Remount ``mountpoint`` ``"ro"`` or ``"rw"``."""
    result = _run("mount", "-o", f"remount,{mode}", str(mountpoint))
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def read_only(mountpoint: Path) -> Iterator[None]:
    """``mountpoint`` read-only for the block, writable again afterwards."""
    remount(mountpoint, "ro")
    try:
        yield
    finally:
        remount(mountpoint, "rw")


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def fill(mountpoint: Path, leave: int = 0) -> None:
    """Write filler files on ``mountpoint`` until at most ``leave`` bytes (rounded up to a page) are free."""
    number = len(list(mountpoint.glob(FILLER_PREFIX + "*")))
    target = max(0, free_bytes(mountpoint) - leave) // _PAGE * _PAGE
    block = b"\xff" * (1 << 20)
    with (mountpoint / f"{FILLER_PREFIX}{number}").open("wb", buffering=0) as filler:
        try:
            while target > 0:
                target -= filler.write(block[: min(target, len(block))])
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    assert free_bytes(mountpoint) <= max(leave, 0) + _PAGE


def empty(mountpoint: Path) -> None:
    """Remove every filler file."""
    for filler in mountpoint.glob(FILLER_PREFIX + "*"):
        filler.unlink()


def noise_png(width: int, height: int) -> bytes:
    """A PNG of seeded random pixels: it does not compress, so it (and each derived image of it at
    about its size) takes about ``3 × width × height`` bytes."""
    pixels = random.Random(width * 100_003 + height).randbytes(width * height * 3)
    return encode(Image.frombytes("RGB", (width, height), pixels), "PNG")
