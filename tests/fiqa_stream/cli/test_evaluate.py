"""How ``fiqa-stream eval`` hands a held-out sighting to the scorer: as the pipeline would."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fiqa_stream.cli.evaluate import default_model, held_out_faces, sighting_face, turned_model_scores
from fiqa_stream.media.faces import face_photos
from fiqa_stream.scorers.config import FiqaScorerConfig
from fiqa_stream.scorers.fiqa import FiqaScorer, aligned_crops
from fiqa_stream.scorers.training.sources import Photo, detect_faces
from fiqa_stream.scorers.training.utility import SIGHTING_LANDMARKS, SIGHTING_SIZE, sighting
from fiqa_stream.scorers.training.utility_eval import HeldOut

SHIFT = 12.0
#: How far yuface's eyes may lie from the framing: a fifth of the eye distance. On the
# sightings cut from the 8 bundled photos they lie 6-12 px of 70 from it.
TOLERANCE = 0.2 * float(SIGHTING_LANDMARKS[1, 0] - SIGHTING_LANDMARKS[0, 0])


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


@pytest.fixture(scope="module")
def clean_views(tmp_path_factory: pytest.TempPathFactory) -> HeldOut:
    """Four bundled faces' clean sightings as a held-out folder (labels unused here)."""
    root = tmp_path_factory.mktemp("held")
    names = []
    for k in (0, 1, 3, 6):
        photo = face_photos()[k]
        (landmarks, confidence), *_ = detect_faces(photo)
        names.append(f"id{k:03d}.png")
        cv2.imwrite(str(root / names[-1]), sighting(Photo(str(k), photo, landmarks, confidence)))
    ones = np.ones(len(names))
    return HeldOut(root, names, np.arange(len(names)), 0 * ones, 0 * ones, ["clean"] * len(names), 0 * ones, ones,
                   0 * ones, ones, 0.6)


def test_a_level_crop_is_cut_by_the_framing_and_a_turned_one_costs_score(clean_views: HeldOut) -> None:
    model = default_model()
    level = turned_model_scores(clean_views, model, 0.0)
    scorer = FiqaScorer(FiqaScorerConfig.model_validate({"model": model}))
    faces = held_out_faces(clean_views, ideal_landmarks=True)
    np.testing.assert_allclose(level, scorer.model_scores(aligned_crops(faces, scorer.input_size)))
    assert turned_model_scores(clean_views, model, 30.0).mean() < level.mean()
