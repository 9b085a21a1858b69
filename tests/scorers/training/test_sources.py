"""Where the training and evaluation faces are found in their photos."""

from __future__ import annotations

import numpy as np

from fiqa_stream.scorers.align import similarity_from_landmarks, turned
from fiqa_stream.scorers.training.sources import detect_faces, refine_landmarks


def roll_degrees(landmarks: np.ndarray) -> float:
    """How far the similarity that levels ``landmarks`` turns them, in degrees."""
    matrix = similarity_from_landmarks(landmarks)
    return float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))


def test_landmarks_rolled_against_the_face_come_back_level(photos: list[np.ndarray]) -> None:
    for k in (0, 3, 6):
        (found, _), *_ = detect_faces(photos[k])
        for degrees in (-30.0, 25.0):
            refined = refine_landmarks(photos[k], turned(found, degrees))
            assert abs(roll_degrees(refined) - roll_degrees(found)) < 4.0, (k, degrees)
            eyes = np.linalg.norm(found[1] - found[0])
            assert np.linalg.norm(refined - found, axis=1).mean() < 0.15 * eyes, (k, degrees)


def test_a_face_that_cannot_be_found_again_keeps_its_landmarks() -> None:
    grey = np.full((400, 400, 3), 128, np.uint8)
    landmarks = np.array([[170, 180], [230, 180], [200, 210], [175, 240], [225, 240]], np.float32)
    assert np.array_equal(refine_landmarks(grey, landmarks), landmarks)
