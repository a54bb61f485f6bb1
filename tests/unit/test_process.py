"""The process-wide settings a server process applies when its application is built."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from pymager.process import SWITCH_INTERVAL, tune_process


@pytest.fixture
def restored() -> Iterator[None]:
    interval = sys.getswitchinterval()
    yield
    sys.setswitchinterval(interval)
    gc.unfreeze()


@pytest.mark.usefixtures("restored")
def test_tune_process_shortens_the_gil_switch_interval_and_freezes_startup_objects() -> None:
    gc.unfreeze()
    assert sys.getswitchinterval() != SWITCH_INTERVAL
    tune_process()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert gc.get_freeze_count() > 0
