"""Real face photos cut into head crops: what demo clips, test scenarios and training start from.

The photos come with the installed packages (see :func:`face_photos`); nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import yuface

from fiqa_stream.errors import DependencyError

__all__ = ["FaceCrop", "face_boxes", "face_crops", "face_photos"]

logger = logging.getLogger(__name__)

_INSIGHTFACE_IMAGES = ("t1.jpg", "Tom_Hanks_54745.png")
_DETECT_MAX_SIDE = 960  # yuface warns (and degrades) above this size


@dataclass(frozen=True)
class FaceCrop:
    """A head cut from a photo; ``centre`` is the face box centre as a fraction of its size."""

    image: np.ndarray
    centre: tuple[float, float]


def face_photos() -> list[np.ndarray]:
    """Real face crops, each a whole head with margin, cut from the bundled photos.

    Each crop extends the detected face box by half its size on every side (less where
    the photo ends), so a detector sees a whole head.
    The photos are insightface's ``t1.jpg`` (six faces) and ``Tom_Hanks_54745.png``
    plus scikit-image's astronaut. Without insightface only the astronaut is used.

    Returns:
        BGR ``uint8`` arrays of shape ``(h, w, 3)``; new copies on every call.

    Raises:
        DependencyError: Neither insightface nor scikit-image is installed.
    """
    return [crop.image.copy() for crop in face_crops()]


@lru_cache(maxsize=1)
def face_crops() -> tuple[FaceCrop, ...]:
    """The crops of :func:`face_photos` with their face centres, cut once and shared.

    Raises:
        DependencyError: Neither insightface nor scikit-image is installed.
    """
    crops = [crop for image in _source_images() for crop in _cut_faces(image)]
    if not crops:
        raise DependencyError.missing("insightface", "demo", "composing the demo clip")
    return tuple(crops)


def face_boxes(image: np.ndarray, conf: float = 0.5) -> np.ndarray:
    """Face boxes ``(x, y, w, h)`` as float, detected on a copy no larger than yuface likes."""
    scale = min(1.0, _DETECT_MAX_SIDE / max(image.shape[:2]))
    small = image
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    _, boxes, _ = yuface.detect(np.ascontiguousarray(small), conf=conf)
    return boxes.astype(np.float64).reshape(-1, 4) / scale


def _source_images() -> list[np.ndarray]:
    images: list[np.ndarray] = []
    # find_spec locates the wheel's data without importing insightface (and onnxruntime).
    spec = importlib.util.find_spec("insightface")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "images"
        for name in _INSIGHTFACE_IMAGES:
            image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if image is not None:
                images.append(image)
    else:
        logger.warning(
            "insightface is not installed: composing faces from the astronaut photo alone "
            "(pip install 'fiqa-stream[demo]' for more faces)"
        )
    try:
        from skimage import data
    except ImportError:
        logger.warning("scikit-image is not installed: the astronaut photo is not used")
    else:
        images.append(np.ascontiguousarray(data.astronaut()[:, :, ::-1]))
    return images


def _cut_faces(image: np.ndarray) -> list[FaceCrop]:
    crops = []
    for x, y, w, h in sorted(face_boxes(image).tolist()):
        # The margin is clipped where the photo ends: padding would smear streaks into the head.
        x0, y0 = max(0, round(x - w / 2)), max(0, round(y - h / 2))
        x1 = min(image.shape[1], round(x + 1.5 * w))
        y1 = min(image.shape[0], round(y + 1.5 * h))
        centre = ((x + w / 2 - x0) / (x1 - x0), (y + h / 2 - y0) / (y1 - y0))
        crops.append(FaceCrop(image[y0:y1, x0:x1].copy(), centre))
    return crops
