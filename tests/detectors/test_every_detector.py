"""What every embedded detector must do, whichever backend runs it."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from fiqa_stream.detectors import build_detector
from fiqa_stream.detectors.config import CenterFaceConfig, YuNetConfig
from fiqa_stream.types import Detections

EMBEDDED = pytest.mark.parametrize(
    "config", [YuNetConfig(max_width=640), CenterFaceConfig(max_width=640)], ids=["yunet", "centerface"]
)


def by_left_edge(found: Detections) -> np.ndarray:
    return found.boxes[np.argsort(found.boxes[:, 0])]


@EMBEDDED
def test_it_finds_the_astronauts_face_with_landmarks_in_image_order(
    config: YuNetConfig | CenterFaceConfig, astronaut: np.ndarray
) -> None:
    (found,) = build_detector(config).detect([astronaut])
    assert len(found) == 1
    x1, y1, x2, y2 = found.boxes[0]
    assert x1 < 225 < x2 and y1 < 120 < y2
    assert 0.5 < found.scores[0] <= 1.0
    assert found.landmarks is not None
    left_eye, right_eye, nose, left_mouth, right_mouth = found.landmarks[0]
    assert left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])
    assert np.all((found.landmarks[0] >= [x1, y1]) & (found.landmarks[0] <= [x2, y2]))


@EMBEDDED
def test_a_wide_frame_is_detected_downscaled_and_mapped_back(
    config: YuNetConfig | CenterFaceConfig, group_photo: np.ndarray
) -> None:
    upscaled = cv2.resize(group_photo, (1920, 1329), interpolation=cv2.INTER_LINEAR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        original, large = build_detector(config).detect([group_photo, upscaled])
    assert len(original) == len(large) == 6
    np.testing.assert_allclose(by_left_edge(large) / 1.5, by_left_edge(original), atol=3)
