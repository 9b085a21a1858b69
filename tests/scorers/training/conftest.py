"""Real faces for the training-data tests: the bundled head photos and one aligned crop."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_stream.media.faces import face_photos
from fiqa_stream.scorers.align import align_face
from fiqa_stream.scorers.training.degradation_set import detect_landmarks


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """The real head photos (BGR uint8) the degradation set is built from."""
    return face_photos()


@pytest.fixture(scope="session")
def aligned_face(photos: list[np.ndarray]) -> np.ndarray:
    """The first photo's face aligned to the ArcFace framing at 128 px."""
    landmarks = detect_landmarks(photos[0])
    assert landmarks is not None
    return align_face(photos[0], landmarks, np.zeros(4, np.float32), 128)
