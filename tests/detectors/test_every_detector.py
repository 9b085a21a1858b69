"""What every embedded detector must do, whichever backend runs it."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_stream.detectors import build_detector
from fiqa_stream.detectors.config import CenterFaceConfig, YuNetConfig


@pytest.mark.parametrize("config", [YuNetConfig(), CenterFaceConfig()], ids=["yunet", "centerface"])
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
