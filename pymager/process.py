"""Process-wide settings for a pymager server process, standalone or under mod_wsgi, each measured
with ``make bench`` (benchmarks/). Applied once, when the application is built."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys

# glibc's mallopt parameter and the threshold pymager pins it to.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 20
# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
SWITCH_INTERVAL = 0.001


def tune_process() -> None:
    """- glibc serves allocations from 1 MiB up (decoded image buffers) with ``mmap`` and returns them
      to the system when freed. By default it raises that threshold after the first such free, up to
      32 MiB, and image buffers then stay cached in per-thread arenas: 8 concurrent cold 24 MP →
      1024x768 derivations left the server at 285 MB RSS instead of about 140 MB.
      ``MALLOC_MMAP_THRESHOLD_`` in the environment still wins.
    - Objects alive at start-up (modules, SQLAlchemy and CherryPy state) are frozen out of the cyclic
      garbage collector, whose full collections over them paused every thread for about 40 ms.
    - A generation runs in C with the GIL released, but takes it back between steps (decode, resize,
      encode) and waits behind the threads answering other requests: up to the switch interval each
      time. At 1 ms instead of 5, 100 simultaneous requests for one cold 24 MP key took a median 167 ms
      instead of 174 (8 bursts each, 16 threads).
    """
    if platform.libc_ver()[0] == "glibc" and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()
