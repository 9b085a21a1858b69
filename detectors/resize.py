"""Detection on a downscaled copy of large frames, with results mapped back."""

from __future__ import annotations

import cv2
import numpy as np


def downscaled(image: np.ndarray, max_width: int) -> tuple[np.ndarray, float]:
    """The image shrunk to at most ``max_width`` wide (aspect kept), and the factor that
    maps its coordinates back to the original (1.0 when it was small enough)."""
    height, width = image.shape[:2]
    if width <= max_width:
        return np.ascontiguousarray(image), 1.0
    scale = max_width / width
    small = cv2.resize(image, (max_width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    return small, width / max_width
