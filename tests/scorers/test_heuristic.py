"""The heuristic scorer on real faces: each degradation lowers its component.

Degradations are applied to the whole frame, which is then scored with the faces'
boxes and landmarks (scaled when the frame is resized).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fiqa_stream.scorers.align import align_face
from fiqa_stream.scorers.base import Scorer
from fiqa_stream.scorers.config import HeuristicScorerConfig, HeuristicWeights
from fiqa_stream.scorers.heuristic import COMPONENTS, HeuristicScorer
from fiqa_stream.types import Face

NAMES = {"sharpness", "exposure", "pose", "size", "confidence"}


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma else image


def noisy(image: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0.0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def gained(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def components(scorer: HeuristicScorer, faces: list[Face], name: str) -> np.ndarray:
    return np.array([quality.components[name] for quality in scorer.score(faces)])


def fused(scorer: HeuristicScorer, faces: list[Face]) -> np.ndarray:
    return np.array([quality.score for quality in scorer.score(faces)])


def test_it_is_a_scorer_named_heuristic_1(scorer) -> None:
    assert isinstance(scorer, Scorer)
    assert scorer.model == "heuristic-1"
    assert scorer.score([]) == []
    with HeuristicScorer(HeuristicScorerConfig()) as scoped:
        assert scoped.score([]) == []


def test_every_face_gets_the_five_named_components_in_range(scene, scorer) -> None:
    for faces in (scene.faces(), scene.faces(landmarks=False)):
        qualities = scorer.score(faces)
        assert len(qualities) == len(faces)
        for quality in qualities:
            assert set(quality.components) == NAMES
            assert 0.0 <= quality.score <= 1.0
            assert all(0.0 <= value <= 1.0 for value in quality.components.values())


def test_the_fused_score_is_the_normalised_weighted_mean(scene, scorer) -> None:
    weights = HeuristicWeights()
    w = np.array([getattr(weights, name) for name in COMPONENTS])
    for quality in scorer.score(scene.faces()):
        values = np.array([quality.components[name] for name in COMPONENTS])
        assert quality.score == pytest.approx(float(values @ w / w.sum()), abs=1e-9)


def test_a_face_scores_the_same_alone_as_in_a_batch_and_from_its_aligned_crop(scene, scorer) -> None:
    # The batch's filters run over the faces stacked into one image; no face may see its neighbours.
    faces = scene.faces() + scene.faces(blurred(scene.image, 2.0)) + scene.faces(noisy(scene.image, 12.0))
    together = scorer.score(faces)
    crops = np.stack([align_face(face.image, face.landmarks, face.box) for face in faces])
    for face, batched, from_crop in zip(faces, together, scorer.score(faces, crops), strict=True):
        (alone,) = scorer.score([face])
        assert batched.components == alone.components == from_crop.components


def test_confidence_is_the_detectors(scene, scorer) -> None:
    confidence = components(scorer, scene.faces(), "confidence")
    np.testing.assert_allclose(confidence, scene.confidences, atol=1e-6)


@pytest.mark.parametrize("name", COMPONENTS)
def test_a_zero_weight_removes_a_components_influence(scene, name) -> None:
    kept = {other: 0.0 for other in COMPONENTS}
    kept[name] = 1.0
    only = HeuristicScorer(HeuristicScorerConfig(weights=HeuristicWeights(**kept)))
    for quality in only.score(scene.faces()):
        assert quality.score == pytest.approx(quality.components[name])

    without = HeuristicScorer(HeuristicScorerConfig(weights=HeuristicWeights(**{name: 0.0})))
    # Darkening the frame changes every image component; with ``name`` weighted 0
    # the fused score still follows the remaining ones exactly.
    for quality in without.score(scene.faces(gained(scene.image, 0.3))):
        rest = [other for other in COMPONENTS if other != name]
        w = np.array([getattr(HeuristicWeights(), other) for other in rest])
        values = np.array([quality.components[other] for other in rest])
        assert quality.score == pytest.approx(float(values @ w / w.sum()), abs=1e-9)


def test_all_weights_zero_is_refused() -> None:
    zero = HeuristicWeights(sharpness=0, exposure=0, pose=0, size=0, confidence=0)
    with pytest.raises(ValueError, match="weights"):
        HeuristicScorer(HeuristicScorerConfig(weights=zero))


def test_blur_lowers_sharpness_and_score_monotonically(scene, scorer) -> None:
    sigmas = (0.0, 1.0, 2.0, 3.0, 4.0)
    sharpness = np.stack(
        [components(scorer, scene.faces(blurred(scene.image, s)), "sharpness") for s in sigmas]
    )
    score = np.stack([fused(scorer, scene.faces(blurred(scene.image, s))) for s in sigmas])
    assert np.all(np.diff(sharpness, axis=0) < 0), sharpness
    assert np.all(np.diff(score, axis=0) < 0), score


def test_noise_lowers_sharpness_and_score(scene, scorer) -> None:
    levels = (0.0, 10.0, 20.0)
    sharpness = np.stack(
        [components(scorer, scene.faces(noisy(scene.image, s)), "sharpness") for s in levels]
    )
    score = np.stack([fused(scorer, scene.faces(noisy(scene.image, s))) for s in levels])
    assert np.all(np.diff(sharpness, axis=0) < 0), sharpness
    assert np.all(np.diff(score, axis=0) < 0), score


def test_jpeg_blocking_lowers_sharpness_and_score(scene, scorer) -> None:
    clean, blocky = scene.faces(), scene.faces(jpeg(scene.image, 10))
    assert np.all(components(scorer, blocky, "sharpness") < components(scorer, clean, "sharpness"))
    assert np.all(fused(scorer, blocky) < fused(scorer, clean))


@pytest.mark.parametrize("gain", [0.3, 2.5], ids=["dark", "over-exposed"])
def test_bad_exposure_lowers_exposure(scene, scorer, gain) -> None:
    clean = components(scorer, scene.faces(), "exposure")
    exposed = components(scorer, scene.faces(gained(scene.image, gain)), "exposure")
    assert np.all(exposed < clean - 0.3), (clean, exposed)


def test_a_low_contrast_face_lowers_exposure(scene, scorer) -> None:
    flat = (scene.image.astype(np.float32) * 0.2 + 100).astype(np.uint8)
    clean = components(scorer, scene.faces(), "exposure")
    assert np.all(components(scorer, scene.faces(flat), "exposure") < clean)


def test_a_rolled_face_lowers_pose(scene, scorer) -> None:
    clean = components(scorer, scene.faces(), "pose")
    height, width = scene.image.shape[:2]
    rotation = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), 40.0, 1.0)
    rotated = cv2.warpAffine(scene.image, rotation, (width, height))
    landmarks = (scene.landmarks @ rotation[:, :2].T + rotation[:, 2]).astype(np.float32)
    faces = [
        Face(rotated, face.box, face.confidence, points)
        for face, points in zip(scene.faces(), landmarks, strict=True)
    ]
    assert np.all(components(scorer, faces, "pose") < clean)


def test_a_turned_head_lowers_pose(astronaut, group, scorer) -> None:
    frontal = components(scorer, astronaut.faces(), "pose")[0]
    assert frontal > 0.9
    # One face of the group photo looks well aside: its nose sits next to an eye.
    turned = components(scorer, group.faces(), "pose")
    assert turned.min() < 0.1

    for shift in ((0.6, 0.0), (-0.6, 0.0), (0.0, 0.4), (0.0, -0.4)):
        landmarks = astronaut.landmarks[0].copy()
        eyes = float(np.linalg.norm(landmarks[1] - landmarks[0]))
        landmarks[2] += np.array(shift, np.float32) * eyes / 2.0
        face = Face(astronaut.image, astronaut.boxes[0], 0.9, landmarks)
        assert components(scorer, [face], "pose")[0] < frontal - 0.2, shift


def test_without_landmarks_pose_is_a_neutral_half(scene, scorer) -> None:
    np.testing.assert_allclose(components(scorer, scene.faces(landmarks=False), "pose"), 0.5)


def test_a_smaller_face_lowers_size(scene, scorer) -> None:
    for landmarks in (True, False):
        full = components(scorer, scene.faces(landmarks=landmarks), "size")
        small_image = cv2.resize(scene.image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        small = components(scorer, scene.faces(small_image, 0.5, landmarks), "size")
        assert np.all(full < 1.0)
        np.testing.assert_allclose(small, full / 2.0, rtol=0.01)


def test_size_saturates_at_the_full_size_eye_distance(astronaut) -> None:
    near = HeuristicScorer(HeuristicScorerConfig(full_size_eye_distance=20.0))
    assert components(near, astronaut.faces(), "size")[0] == 1.0


def test_tiny_and_off_frame_faces_still_score(astronaut, scorer) -> None:
    faces = [
        Face(astronaut.image, np.array([10, 10, 14, 14], np.float32), 0.5, None),
        Face(astronaut.image, np.array([600, 600, 700, 700], np.float32), 0.5, None),
        Face(astronaut.image, np.array([500, 500, 540, 540], np.float32), 0.5,
             np.full((5, 2), 510.0, np.float32)),
    ]
    for quality in scorer.score(faces):
        assert 0.0 <= quality.score <= 1.0 and set(quality.components) == NAMES
