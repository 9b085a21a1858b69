"""The detector interface: images in, faces (boxes, confidences, 5 landmarks) out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from fiqa_stream.types import Detections


@runtime_checkable
class Detector(Protocol):
    """A face detector. Implementations are built from their config model.

    ``detect`` takes a batch of H×W×3 uint8 BGR images (possibly of different sizes)
    and returns one ``Detections`` per image, in that image's own pixel coordinates,
    with confidences in [0, 1].
    """

    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]: ...

    def close(self) -> None: ...
