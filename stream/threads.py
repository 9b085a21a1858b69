"""Native thread pools of a process that shares the machine with other workers."""

from __future__ import annotations

import os

import cv2


def limit_threads(threads: int) -> None:
    """Keep this process's native thread pools to ``threads``. Call before the detector
    is built: OpenMP (YuNet) reads its settings once, when the library loads. Without
    it, OpenMP threads that spin while they wait made YuNet 25× slower on a busy machine."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cv2.setNumThreads(threads)
