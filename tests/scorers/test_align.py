"""Alignment to the ArcFace template and the loose crop, on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from fiqa_stream.scorers.align import (
    ARCFACE_TEMPLATE,
    align_face,
    loose_crop,
    similarity_from_box,
    similarity_from_landmarks,
    turned,
)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_the_matrix_is_umeyamas_least_squares_similarity(scene) -> None:
    for landmarks in scene.landmarks:
        reference = SimilarityTransform.from_estimate(landmarks, ARCFACE_TEMPLATE)
        np.testing.assert_allclose(
            similarity_from_landmarks(landmarks), reference.params[:2], atol=1e-3
        )


def test_a_batch_of_landmarks_gives_one_matrix_each(scene) -> None:
    batch = similarity_from_landmarks(scene.landmarks)
    assert batch.shape == (len(scene.landmarks), 2, 3) and batch.dtype == np.float32
    for matrix, landmarks in zip(batch, scene.landmarks, strict=True):
        np.testing.assert_allclose(matrix, similarity_from_landmarks(landmarks), atol=1e-4)


def test_landmarks_that_are_a_similarity_of_the_template_map_onto_it_exactly() -> None:
    angle, scale, shift = np.radians(25.0), 2.7, np.array([310.0, 120.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (ARCFACE_TEMPLATE @ rotation.T * scale + shift).astype(np.float32)
    for size in (112, 224):
        mapped = apply(similarity_from_landmarks(landmarks, size), landmarks)
        np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE * size / 112, atol=0.01)


def test_the_aligned_face_has_its_eyes_at_the_template_positions(scene) -> None:
    for box, landmarks in zip(scene.boxes, scene.landmarks, strict=True):
        marked = scene.image.copy()
        for x, y in landmarks[:2]:
            cv2.circle(marked, (round(float(x)), round(float(y))), 2, (0, 255, 0), -1)
        aligned = align_face(marked, landmarks, box)
        assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8

        green = (aligned[..., 1] > 200) & (aligned[..., 0] < 80) & (aligned[..., 2] < 80)
        count, labels = cv2.connectedComponents(green.astype(np.uint8))
        found = np.array(
            [np.argwhere(labels == k)[:, ::-1].mean(axis=0) for k in range(1, count)]
        )
        found = found[np.argsort(found[:, 0])]
        mapped = apply(similarity_from_landmarks(landmarks), landmarks[:2])
        # The warp puts each eye where the matrix says ...
        np.testing.assert_allclose(found, mapped, atol=1.5)
        # ... which is the template's: the eyes' midpoint within a few pixels and the
        # eye line level. A real face is not the template's shape, and a turned one
        # (in the group photo) has its eyes closer together, so single eyes may miss.
        np.testing.assert_allclose(mapped.mean(axis=0), ARCFACE_TEMPLATE[:2].mean(axis=0), atol=3.5)
        dx, dy = mapped[1] - mapped[0]
        assert abs(np.degrees(np.arctan2(dy, dx))) < 4.0


def test_a_bigger_aligned_size_scales_the_template(astronaut) -> None:
    landmarks = astronaut.landmarks[0]
    small = apply(similarity_from_landmarks(landmarks, 112), landmarks)
    large = apply(similarity_from_landmarks(landmarks, 224), landmarks)
    np.testing.assert_allclose(large, small * 2.0, atol=1e-3)
    aligned = align_face(astronaut.image, landmarks, astronaut.boxes[0], size=224)
    assert aligned.shape == (224, 224, 3)


def test_without_landmarks_the_box_centre_becomes_the_crop_centre(astronaut) -> None:
    box = astronaut.boxes[0]
    matrix = similarity_from_box(box, 112)
    centre = np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])
    np.testing.assert_allclose(apply(matrix, centre[None]), [[56.0, 56.0]], atol=1e-3)
    assert matrix[0, 0] == pytest.approx(matrix[1, 1]) and matrix[0, 1] == 0.0
    aligned = align_face(astronaut.image, None, box)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8


def test_a_box_at_the_frame_edge_replicates_the_border(astronaut) -> None:
    aligned = align_face(astronaut.image, None, np.array([-60, -60, 40, 40], np.float32))
    assert aligned.shape == (112, 112, 3)
    np.testing.assert_array_equal(aligned[0, 0], astronaut.image[0, 0])


def test_loose_crop_grows_the_box_by_the_margin(astronaut) -> None:
    x1, y1, x2, y2 = (100.0, 120.0, 200.0, 260.0)
    crop = loose_crop(astronaut.image, np.array([x1, y1, x2, y2]), 0.25, 1000)
    assert crop.shape == (140 + 2 * 35, 100 + 2 * 25, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, astronaut.image[85:295, 75:225])


def test_loose_crop_is_clipped_to_the_frame_and_downscaled(scene) -> None:
    height, width = scene.image.shape[:2]
    for box in scene.boxes:
        crop = loose_crop(scene.image, box, 2.0, 64)
        assert max(crop.shape[:2]) <= 64 and crop.dtype == np.uint8 and crop.shape[2] == 3
    whole = loose_crop(scene.image, np.array([0, 0, width, height], np.float32), 1.0, 10_000)
    assert whole.shape == scene.image.shape


def test_a_box_outside_the_frame_still_gives_a_pixel(astronaut) -> None:
    crop = loose_crop(astronaut.image, np.array([900, 900, 950, 950], np.float32), 0.4, 256)
    assert crop.shape[0] >= 1 and crop.shape[1] >= 1


def test_turned_landmarks_keep_their_centre_and_tilt_the_eye_line() -> None:
    points = ARCFACE_TEMPLATE.astype(np.float32)
    tilted = turned(points, 20.0)
    np.testing.assert_allclose(tilted.mean(axis=0), points.mean(axis=0), atol=1e-4)
    eyes = tilted[1] - tilted[0]
    # Counter-clockwise as seen: with y pointing down, the image-right eye rises.
    assert np.degrees(np.arctan2(-eyes[1], eyes[0])) == pytest.approx(20.0 + np.degrees(
        np.arctan2(-(points[1, 1] - points[0, 1]), points[1, 0] - points[0, 0])), abs=1e-3)
    matrix = similarity_from_landmarks(tilted)
    assert np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])) == pytest.approx(20.0, abs=1e-3)
