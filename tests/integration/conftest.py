"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pymager.domain import ImageInfo
from pymager.interfaces import IImageProcessor

WriteFile = Callable[[bytes], str]


@pytest.fixture
def write(tmp_path: Path) -> WriteFile:
    """Write bytes to a new file under the test's directory; return its path."""
    counter = iter(range(1_000_000))

    def write(data: bytes) -> str:
        path = tmp_path / f"original-{next(counter)}"
        path.write_bytes(data)
        return str(path)

    return write


def identify(processor: IImageProcessor, path: str) -> ImageInfo:
    """What ``processor`` identifies in the file at ``path`` (read as the service hands it a staged file)."""
    with open(path, "rb") as source:
        return processor.identify(source)
