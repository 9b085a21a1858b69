"""How ``fiqa-stream eval`` hands a held-out sighting to the scorer: as the pipeline would."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fiqa_stream.cli.evaluate import sighting_face
from fiqa_stream.media.faces import face_photos
from fiqa_stream.scorers.training.sources import Photo, detect_faces
from fiqa_stream.scorers.training.utility import SIGHTING_LANDMARKS, SIGHTING_SIZE, sighting

SHIFT = 12.0
#: How far yuface's landmarks may lie from the framing: a third of the eye distance. Found
# on a bundled photo and again on the sighting cut from it, they differ by 11-25 px of 75.
TOLERANCE = 0.35 * float(SIGHTING_LANDMARKS[1, 0] - SIGHTING_LANDMARKS[0, 0])


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    photo = face_photos()[0]
    (landmarks, confidence), *_ = detect_faces(photo)
    return sighting(Photo("0", photo, landmarks, confidence))


def _shifted(image: np.ndarray, dx: float) -> np.ndarray:
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0]], np.float32)
    return cv2.warpAffine(image, matrix, (SIGHTING_SIZE, SIGHTING_SIZE), borderMode=cv2.BORDER_REPLICATE)


def test_a_sighting_carries_the_landmarks_the_detector_finds_on_it(clean: np.ndarray) -> None:
    here, moved = sighting_face(clean), sighting_face(_shifted(clean, SHIFT))
    assert here.landmarks is not None and moved.landmarks is not None
    assert here.confidence > 0.5
    # The eyes lie where the sighting was cut to put them, to the detector's accuracy ...
    assert np.abs(here.landmarks[:2] - SIGHTING_LANDMARKS[:2]).max() < TOLERANCE
    # ... and follow the face when it is not where the framing says.
    assert np.mean(moved.landmarks[:, 0] - here.landmarks[:, 0]) == pytest.approx(SHIFT, abs=3.0)


def test_ideal_landmarks_are_the_framing_the_sighting_was_cut_to(clean: np.ndarray) -> None:
    moved = sighting_face(_shifted(clean, SHIFT), ideal_landmarks=True)
    assert moved.landmarks is not None
    np.testing.assert_allclose(moved.landmarks, SIGHTING_LANDMARKS)
    assert moved.confidence > 0.5


def test_the_landmarks_and_box_follow_the_scale_the_face_was_captured_at(clean: np.ndarray) -> None:
    small = sighting_face(clean, scale=0.5)
    assert small.image.shape[:2] == (SIGHTING_SIZE // 2, SIGHTING_SIZE // 2)
    assert small.landmarks is not None
    assert np.abs(small.landmarks[:2] - SIGHTING_LANDMARKS[:2] * 0.5).max() < TOLERANCE * 0.5


def test_a_sighting_the_detector_misses_gets_its_framing_and_no_confidence() -> None:
    blank = np.full((SIGHTING_SIZE, SIGHTING_SIZE, 3), 128, np.uint8)
    face = sighting_face(blank)
    assert face.confidence == 0.0
    assert face.landmarks is not None
    np.testing.assert_allclose(face.landmarks, SIGHTING_LANDMARKS)
