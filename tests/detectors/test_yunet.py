"""YuNetDetector on real faces: what it finds, where, and how large frames are handled."""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from fiqa_stream.detectors import Detector, build_detector
from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.yunet import YuNetDetector


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inner = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inner / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inner))


def test_it_is_the_registered_yunet_detector() -> None:
    detector = build_detector(YuNetConfig())
    assert isinstance(detector, YuNetDetector)
    assert isinstance(detector, Detector)
    assert detector.name == "yunet"


def test_a_mirrored_frame_keeps_the_image_left_eye_first(astronaut: np.ndarray) -> None:
    # A negatively strided view: the detector must hand yuface a contiguous copy.
    reference, mirrored = YuNetDetector(YuNetConfig()).detect([astronaut, astronaut[:, ::-1]])
    assert len(mirrored) == 1 and mirrored.landmarks is not None
    x1, y1, x2, y2 = reference.boxes[0]
    np.testing.assert_allclose(mirrored.boxes[0], [512 - x2, y1, 512 - x1, y2], atol=4)
    assert mirrored.landmarks[0, 0, 0] < mirrored.landmarks[0, 1, 0]


def test_it_finds_all_six_faces_of_the_group_photo(group_photo: np.ndarray) -> None:
    (found,) = YuNetDetector(YuNetConfig(max_width=1280)).detect([group_photo])
    assert len(found) == 6
    assert found.boxes.dtype == np.float32 and found.scores.dtype == np.float32
    assert np.all((found.scores > 0.5) & (found.scores <= 1.0))


def test_frames_above_960_pixels_never_make_yuface_warn(astronaut: np.ndarray) -> None:
    detector = YuNetDetector(YuNetConfig(max_width=4096))
    wide = cv2.resize(astronaut, (1920, 1920))
    tall = np.zeros((1600, 800, 3), np.uint8)
    tall[400:1200] = cv2.resize(astronaut, (800, 800))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reference, wide_found, tall_found = detector.detect([astronaut, wide, tall])
    assert len(wide_found) == len(tall_found) == 1
    assert iou(wide_found.boxes[0] / 3.75, reference.boxes[0]) > 0.85
    assert iou((tall_found.boxes[0] - [0, 400, 0, 400]) * 512 / 800, reference.boxes[0]) > 0.85


def test_a_blank_frame_has_no_faces(blank: np.ndarray) -> None:
    (found,) = YuNetDetector(YuNetConfig()).detect([blank])
    assert len(found) == 0
    assert found.landmarks is not None and found.landmarks.shape == (0, 5, 2)


def test_a_batch_gives_one_result_per_image_in_order(astronaut: np.ndarray, blank: np.ndarray) -> None:
    with YuNetDetector(YuNetConfig()) as detector:
        assert detector.detect([]) == []
        assert [len(found) for found in detector.detect([astronaut, blank])] == [1, 0]


def test_the_confidence_threshold_drops_weaker_faces(group_photo: np.ndarray) -> None:
    (found,) = YuNetDetector(YuNetConfig(confidence=0.99)).detect([group_photo])
    assert len(found) == 0
