"""Process-wide settings for a pymager server process, standalone or under mod_wsgi, each measured
with ``make bench`` (the figures are in benchmarks/README.md). Applied once, when the application is
built."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys

# glibc's mallopt parameters, what pymager sets them to, and the environment variable that overrides each.
_MALLOPT = (
    (-8, 1, "MALLOC_ARENA_MAX"),  # M_ARENA_MAX: one heap for every thread
    (-3, 32 << 20, "MALLOC_MMAP_THRESHOLD_"),  # M_MMAP_THRESHOLD: larger blocks are mapped, and unmapped
    (-1, 32 << 20, "MALLOC_TRIM_THRESHOLD_"),  # M_TRIM_THRESHOLD: free memory kept at the heap's top
)
# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
SWITCH_INTERVAL = 0.001


def tune_process() -> None:
    """- glibc's allocator is set to one heap shared by every thread, which keeps up to 32 MiB free at
      its top, and maps only blocks over 32 MiB: a generation's big buffers (the original read in one
      block, decoded pixels) are then reused from one request to the next instead of being mapped,
      zero-filled and unmapped each time, and freed buffers do not stay stranded in per-thread heaps
      (RSS under concurrent generations stays bounded). ``MALLOC_ARENA_MAX``,
      ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` in the environment still win.
    - Objects alive at start-up (modules, SQLAlchemy and CherryPy state) are frozen out of the cyclic
      garbage collector, whose full collections over them paused every thread.
    - A generation runs in C with the GIL released, but takes it back between steps (decode, resize,
      encode) and waits behind the threads answering other requests, up to the switch interval each
      time; a shorter interval bounds that wait, and hits do not suffer from it.
    """
    if platform.libc_ver()[0] == "glibc":
        libc = ctypes.CDLL(None)
        for parameter, value, variable in _MALLOPT:
            if variable not in os.environ:
                libc.mallopt(parameter, value)
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()
