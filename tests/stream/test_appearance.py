"""Appearance descriptors: the same face looks alike from frame to frame, another face does not."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.yunet import YuNetDetector
from fiqa_stream.media.faces import face_photos
from fiqa_stream.stream.appearance import SIZE, blend, describe, is_known
from fiqa_stream.stream.config import TrackerConfig
from fiqa_stream.stream.plausibility import plausible

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
GATE = TrackerConfig().appearance_min_similarity
REID = TrackerConfig().reid_min_similarity


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return face_photos()


def framed(photo: np.ndarray, side: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """The photo scaled to ``side`` on a grey frame, and its face box (the photo's middle half)."""
    frame = np.full((side + 64, side + 64, 3), 100, np.uint8)
    frame[32 : 32 + side, 32 : 32 + side] = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    return frame, np.array([[32 + side / 4, 32 + side / 4, 32 + 3 * side / 4, 32 + 3 * side / 4]], np.float32)


def look(photo: np.ndarray, side: int = 192) -> np.ndarray:
    return describe(*framed(photo, side))[0]


def test_descriptors_are_unit_vectors_of_a_16_by_16_patch(photos: list[np.ndarray]) -> None:
    frame, box = framed(photos[0])
    out = describe(frame, np.concatenate([box, box + 10]))
    assert out.shape == (2, SIZE * SIZE) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert abs(float(out[0].sum())) < 1e-3  # the mean is removed
    assert describe(frame, np.zeros((0, 4), np.float32)).shape == (0, SIZE * SIZE)


@pytest.mark.parametrize("box", [
    [10, 10, 13, 60],  # 3 px wide
    [-50, -50, -10, -10],  # outside the frame
    [226, 226, 250, 250],  # the plain grey border around the photo
], ids=["narrow", "outside", "flat"])
def test_a_box_with_nothing_to_measure_gets_a_zero_row(photos: list[np.ndarray], box: list[float]) -> None:
    frame, _ = framed(photos[0])
    [row] = describe(frame, np.array([box], np.float32))
    assert not row.any() and not is_known(row)


def test_brightness_and_contrast_do_not_change_a_look(photos: list[np.ndarray]) -> None:
    frame, box = framed(photos[0])
    dimmer = cv2.convertScaleAbs(frame, alpha=0.6, beta=30)
    assert float(describe(frame, box)[0] @ describe(dimmer, box)[0]) > 0.98


def test_the_same_face_moved_blurred_and_rescaled_still_looks_alike(photos: list[np.ndarray]) -> None:
    frame, box = framed(photos[0])
    reference = describe(frame, box)[0]
    assert float(reference @ describe(frame, box + 3)[0]) > REID  # the box a few px off
    blurred = cv2.GaussianBlur(frame, (0, 0), 2.0)
    assert float(reference @ describe(blurred, box)[0]) > REID
    assert float(reference @ look(photos[0], side=96)) > REID  # half the size


def test_the_same_face_is_more_alike_to_itself_than_to_any_other_face(photos: list[np.ndarray]) -> None:
    looks = np.stack([look(photo) for photo in photos])
    moved = np.stack([describe(frame, box + 3)[0] for frame, box in map(framed, photos)])
    similarity = moved @ looks.T
    assert (similarity.argmax(axis=1) == np.arange(len(photos))).all()
    assert (np.diag(similarity) > REID).all()


@pytest.mark.xfail(strict=True, reason=(
    "the 16x16 grey patch does not tell frontal faces apart reliably: of the 28 pairs of "
    "face_photos() face boxes, two correlate above the default appearance_min_similarity 0.5 "
    "(photos 2-3: 0.55, 3-5: 0.53; 0-1 at 0.50 just below), so one of those faces taking the other's "
    "place keeps the track"))
def test_no_two_different_real_faces_pass_the_default_appearance_gate(photos: list[np.ndarray]) -> None:
    looks = [look(photo) for photo in photos]
    passing = [(a, b, round(float(looks[a] @ looks[b]), 2)) for a, b in combinations(range(len(looks)), 2)
               if float(looks[a] @ looks[b]) >= GATE]
    assert passing == []


def test_most_pairs_of_different_real_faces_fall_below_the_gate(photos: list[np.ndarray]) -> None:
    looks = np.stack([look(photo) for photo in photos])
    pairs = [float(looks[a] @ looks[b]) for a, b in combinations(range(len(looks)), 2)]
    assert len(pairs) == 28
    assert sum(p < GATE for p in pairs) >= 24
    assert np.median(pairs) < 0.35


@pytest.fixture(scope="module")
def megamind_faces() -> dict[int, np.ndarray]:
    """The look of the surest plausible YuNet face on some frames of Megamind.avi."""
    if not MEGAMIND.exists():
        pytest.skip(f"{MEGAMIND} is missing (Debian package opencv-doc)")
    wanted = (20, 21, 120, 121, 198, 199, 200)
    with av.open(str(MEGAMIND)) as container:
        frames = {i: f.to_ndarray(format="bgr24") for i, f in enumerate(container.decode(video=0)) if i in wanted}
    with YuNetDetector(YuNetConfig()) as detector:
        found = detector.detect([frames[i] for i in wanted])
    looks = {}
    for index, detections in zip(wanted, found, strict=True):
        boxes = detections.boxes[plausible(detections)]
        scores = detections.scores[plausible(detections)]
        looks[index] = describe(frames[index], boxes[[int(scores.argmax())]])[0]
    return looks


def test_on_megamind_a_face_on_consecutive_frames_passes_reidentification(
    megamind_faces: dict[int, np.ndarray],
) -> None:
    for first in (20, 120, 198):
        assert float(megamind_faces[first] @ megamind_faces[first + 1]) >= REID, first


def test_on_megamind_the_people_who_meet_across_the_cut_at_200_fail_the_gate(
    megamind_faces: dict[int, np.ndarray],
) -> None:
    assert float(megamind_faces[199] @ megamind_faces[200]) < GATE


def test_blend_keeps_its_share_of_the_old_look_and_stays_unit_length(photos: list[np.ndarray]) -> None:
    old, seen = look(photos[0]), look(photos[1])
    mixed = blend(old, seen, 0.7)
    assert float(np.linalg.norm(mixed)) == pytest.approx(1.0, abs=1e-5)
    expected = 0.7 * old + 0.3 * seen
    np.testing.assert_allclose(mixed, expected / np.linalg.norm(expected), atol=1e-6)
    assert float(mixed @ old) > float(mixed @ seen)
    np.testing.assert_allclose(blend(old, seen, 0.0), seen, atol=1e-6)


def test_blend_ignores_an_unmeasured_sighting_and_adopts_the_first_measured_one(photos: list[np.ndarray]) -> None:
    old, nothing = look(photos[0]), np.zeros(SIZE * SIZE, np.float32)
    assert blend(old, nothing, 0.7) is old
    adopted = blend(nothing, old, 0.7)
    np.testing.assert_array_equal(adopted, old)
    assert adopted is not old  # a copy: later blends never change the sighting's descriptor
    assert is_known(old) and not is_known(nothing)


def test_blend_of_opposite_looks_falls_back_to_the_sighting(photos: list[np.ndarray]) -> None:
    old = look(photos[0])
    np.testing.assert_array_equal(blend(old, -old, 0.5), -old)
