"""CenterFaceDetector on real faces: what it finds, where, and how it agrees with YuNet."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest

from fiqa_stream.detectors import Detector, build_detector
from fiqa_stream.detectors.centerface import CenterFaceDetector
from fiqa_stream.detectors.config import CenterFaceConfig, YuNetConfig
from fiqa_stream.detectors.yunet import YuNetDetector
from fiqa_stream.errors import DependencyError


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inner = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inner / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inner))


@pytest.fixture(scope="module")
def detector() -> Iterator[CenterFaceDetector]:
    with CenterFaceDetector(CenterFaceConfig()) as built:
        yield built


def test_it_is_the_registered_centerface_detector() -> None:
    built = build_detector(CenterFaceConfig())
    assert isinstance(built, CenterFaceDetector)
    assert isinstance(built, Detector)
    assert built.name == "centerface"


def test_it_agrees_with_yunet_on_the_astronaut(detector: CenterFaceDetector, astronaut: np.ndarray) -> None:
    (centerface,) = detector.detect([astronaut])
    (yunet,) = YuNetDetector(YuNetConfig()).detect([astronaut])
    assert len(centerface) == len(yunet) == 1
    assert iou(centerface.boxes[0], yunet.boxes[0]) > 0.5
    assert centerface.landmarks is not None and yunet.landmarks is not None
    # The same point in the same slot: each landmark within a tenth of the face width.
    face_width = float(yunet.boxes[0, 2] - yunet.boxes[0, 0])
    distances = np.linalg.norm(centerface.landmarks[0] - yunet.landmarks[0], axis=1)
    assert np.all(distances < 0.1 * face_width)


def test_it_finds_all_six_faces_of_the_group_photo(detector: CenterFaceDetector, group_photo: np.ndarray) -> None:
    (found,) = detector.detect([group_photo])
    assert len(found) == 6
    assert found.boxes.dtype == np.float32 and found.scores.dtype == np.float32
    assert np.all((found.scores > 0.5) & (found.scores <= 1.0))
    assert np.all((found.boxes[:, :2] >= 0) & (found.boxes[:, 2:] <= [1280, 886]))


def test_a_blank_frame_has_no_faces(detector: CenterFaceDetector, blank: np.ndarray) -> None:
    (found,) = detector.detect([blank])
    assert len(found) == 0
    assert found.landmarks is not None and found.landmarks.shape == (0, 5, 2)


def test_a_batch_gives_one_result_per_image_in_order(
    detector: CenterFaceDetector, astronaut: np.ndarray, blank: np.ndarray, group_photo: np.ndarray
) -> None:
    assert detector.detect([]) == []
    assert [len(found) for found in detector.detect([astronaut, blank])] == [1, 0]
    # Images of different shapes run in separate batches; the results keep the input order.
    counts = [len(found) for found in detector.detect([astronaut, group_photo, blank, astronaut])]
    assert counts == [1, 6, 0, 1]
    many = detector.detect([astronaut] * 9 + [blank])
    assert [len(found) for found in many] == [1] * 9 + [0]


def test_overlapping_candidates_are_merged_into_one_face(astronaut: np.ndarray) -> None:
    with CenterFaceDetector(CenterFaceConfig(confidence=0.05)) as low:
        (found,) = low.detect([astronaut])
    assert len(found) == 1


def test_a_missing_onnxruntime_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(DependencyError, match=r"onnxruntime.*fiqa-stream\[centerface\]"):
        CenterFaceDetector(CenterFaceConfig())
