"""glibc heap settings for a process that runs for weeks decoding video in threads.

Decode threads allocate every frame (2.7 MB at 720p) and the analysis thread frees it.
With glibc's defaults the heap then grows for hours: every thread gets an arena of its
own (up to eight per core), and once a large block has been freed the mmap threshold
rises to its size, so later frames come from those arenas, where freed memory stays
fragmented instead of going back to the system. Measured with bench/soak.py (four 720p
cameras): +50 MB in six minutes with the defaults, flat with two arenas and a fixed
threshold (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 2
# glibc's own starting threshold; fixing it stops the dynamic rise.
MMAP_THRESHOLD = 128 * 1024


def bound_native_heap() -> bool:
    """Fix glibc's arena count and mmap threshold for this process, unless the environment
    already sets them (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``). Call it early,
    before the threads start. Returns False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  # only glibc has it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = [(M_ARENA_MAX, "MALLOC_ARENA_MAX", ARENA_MAX),
                (M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD)]
    for parameter, variable, value in settings:
        if variable not in os.environ and mallopt(parameter, value) != 1:
            log.warning("glibc refused mallopt(%d, %d): memory may grow over long runs", parameter, value)
    return True
