"""Native thread pools of a process that shares the machine with other workers."""

from __future__ import annotations

import os
from typing import Any

import cv2


def with_threads(config_data: dict[str, Any], threads: int) -> dict[str, Any]:
    """The config with onnxruntime's "one thread per core" default (``threads: 0``) of the
    detector and scorer replaced by ``threads``, for one of several workers on a machine."""
    data = dict(config_data)
    for section in ("detector", "scorer"):
        if data[section].get("threads") == 0:
            data[section] = {**data[section], "threads": threads}
    return data


def limit_threads(threads: int) -> None:
    """Keep this process's native thread pools to ``threads``. Call before the detector
    is built: OpenMP (YuNet) reads its settings once, when the library loads. Without
    it, OpenMP threads that spin while they wait made YuNet 25× slower on a busy machine."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cv2.setNumThreads(threads)
