"""Real face photos for the detector specs, as read-only BGR images."""

from __future__ import annotations

import importlib.resources

import cv2
import numpy as np
import pytest
import skimage.data


def _frozen(image: np.ndarray) -> np.ndarray:
    image = np.ascontiguousarray(image)
    image.flags.writeable = False
    return image


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut, 512×512: one frontal face, left eye near (200, 101)."""
    return _frozen(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="session")
def group_photo() -> np.ndarray:
    """insightface's t1.jpg, 1280×886: six people, six frontal faces."""
    path = importlib.resources.files("insightface") / "data/images/t1.jpg"
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return _frozen(image)


@pytest.fixture(scope="session")
def blank() -> np.ndarray:
    """A uniform grey 640×480 frame."""
    return _frozen(np.full((480, 640, 3), 128, np.uint8))
