"""glibc's heap settings: large blocks freed by one thread go back to the system, not to an arena."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A fresh interpreter per case: malloc settings are process-wide and stay once set.
BLOCKS_AFTER_REUSE = """
import ctypes, sys
from fiqa_stream.native_heap import bound_native_heap

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "bounded":
    assert bound_native_heap()
frame = 1280 * 720 * 3
libc.free(libc.malloc(frame))
before = libc.mallinfo2().hblks
again = libc.malloc(frame)
print(libc.mallinfo2().hblks - before)
"""


def mmapped_blocks_after_reuse(mode: str, **env: str) -> int:
    result = subprocess.run([sys.executable, "-c", BLOCKS_AFTER_REUSE, mode], capture_output=True, text=True,
                            env={k: v for k, v in {**os.environ, **env}.items() if v}, check=True)
    return int(result.stdout)


@pytest.fixture(autouse=True)
def _glibc_only() -> None:
    if not hasattr(os, "confstr") or "glibc" not in (os.confstr("CS_GNU_LIBC_VERSION") or ""):
        pytest.skip("glibc only")


def test_by_default_a_freed_frame_raises_the_threshold_and_the_next_one_stays_in_the_heap() -> None:
    assert mmapped_blocks_after_reuse("default", MALLOC_MMAP_THRESHOLD_="") == 0


def test_bounded_every_frame_is_its_own_mapping_given_back_when_freed() -> None:
    assert mmapped_blocks_after_reuse("bounded", MALLOC_MMAP_THRESHOLD_="") == 1


def test_a_setting_in_the_environment_wins() -> None:
    assert mmapped_blocks_after_reuse("bounded", MALLOC_MMAP_THRESHOLD_=str(64 << 20)) == 0
