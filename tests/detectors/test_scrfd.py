"""ScrfdDetector: user-supplied insightface SCRFD packs, decoded from a tiny graph of the same layout.

No SCRFD weights exist offline, so the decoding is checked on an ONNX graph built here
whose 9 outputs (scores, box distances and keypoint distances for strides 8, 16, 32,
two anchors per cell) are constants placing one face at a known spot.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fiqa_stream.config import parse_config
from fiqa_stream.detectors import Detector, build_detector
from fiqa_stream.detectors.config import ScrfdConfig
from fiqa_stream.detectors.scrfd import ScrfdDetector
from fiqa_stream.errors import ModelError

SIDE = 64
STRIDES = (8, 16, 32)
# The face: stride 16, cell (row 1, col 2), first anchor; its centre is (32, 16) input px.
FACE_STRIDE, FACE_INDEX, FACE_CENTRE = 16, (1 * 4 + 2) * 2, np.array([32.0, 16.0])
DISTANCES = np.array([1.0, 0.5, 1.0, 1.5])  # left, top, right, bottom in strides
KEYPOINTS = np.array([[-0.5, -0.25], [0.5, -0.25], [0.0, 0.25], [-0.4, 0.75], [0.4, 0.75]])


def scrfd_graph(path: Path, batched: bool = True, outputs: int = 9) -> Path:
    """An SCRFD-shaped graph: fixed 1×3×64×64 input, constant outputs."""
    arrays: list[np.ndarray] = []
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in STRIDES:
            anchors = (SIDE // stride) ** 2 * 2
            value = np.zeros((anchors, width), np.float32)
            if stride == FACE_STRIDE:
                row = {"score": [0.9], "bbox": DISTANCES, "kps": KEYPOINTS.ravel()}[kind]
                value[FACE_INDEX] = row
            arrays.append(value[None] if batched else value)
    arrays = arrays[:outputs]
    nodes = [helper.make_node("Constant", [], [f"out{i}"], value=numpy_helper.from_array(a)) for i, a in
             enumerate(arrays)]
    graph = helper.make_graph(
        nodes, "scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, list(a.shape)) for i, a in enumerate(arrays)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("batched", [True, False])
def test_it_decodes_boxes_and_landmarks_back_to_frame_pixels(tmp_path: Path, batched: bool) -> None:
    model = scrfd_graph(tmp_path / "det.onnx", batched)
    # A 128×96 frame is fitted into the 64×64 input at half size (aspect kept, padded below).
    with ScrfdDetector(ScrfdConfig(model=model)) as detector:
        (found,) = detector.detect([np.zeros((96, 128, 3), np.uint8)])
    assert len(found) == 1
    centre = FACE_CENTRE
    distance = DISTANCES * FACE_STRIDE
    expected_box = np.array([centre[0] - distance[0], centre[1] - distance[1],
                             centre[0] + distance[2], centre[1] + distance[3]]) * 2.0
    np.testing.assert_allclose(found.boxes[0], expected_box.clip(0, [128, 96, 128, 96]), atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.9], atol=1e-6)
    assert found.landmarks is not None
    np.testing.assert_allclose(found.landmarks[0], (centre + KEYPOINTS * FACE_STRIDE) * 2.0, atol=1e-4)


def test_a_pack_without_keypoints_gives_no_landmarks(tmp_path: Path) -> None:
    model = scrfd_graph(tmp_path / "det.onnx", outputs=6)
    (found,) = ScrfdDetector(ScrfdConfig(model=model)).detect([np.zeros((64, 64, 3), np.uint8)])
    assert len(found) == 1 and found.landmarks is None


def test_faces_below_the_confidence_are_dropped(tmp_path: Path) -> None:
    model = scrfd_graph(tmp_path / "det.onnx")
    (found,) = ScrfdDetector(ScrfdConfig(model=model, confidence=0.95)).detect([np.zeros((64, 64, 3), np.uint8)])
    assert len(found) == 0


def test_it_is_registered_and_built_from_the_config(tmp_path: Path) -> None:
    model = scrfd_graph(tmp_path / "det.onnx")
    config = parse_config({"sources": [{"url": "demo:"}], "detector": {"type": "scrfd", "model": str(model)},
                           "sinks": [{"type": "directory", "path": "out"}]})
    detector = build_detector(config.detector)
    assert isinstance(detector, ScrfdDetector) and isinstance(detector, Detector)


def test_the_model_key_is_required() -> None:
    with pytest.raises(Exception, match="detector.model: required key is missing"):
        parse_config({"sources": [{"url": "demo:"}], "detector": {"type": "scrfd"},
                      "sinks": [{"type": "directory", "path": "out"}]})


def test_a_missing_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "packs" / "det_10g.onnx"
    with pytest.raises(ModelError, match=rf"^{re.escape(str(path))}: SCRFD model file not found \(detector.model"):
        ScrfdDetector(ScrfdConfig(model=path))


def test_an_unreadable_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "det_10g.onnx"
    path.write_bytes(b"this is not an ONNX graph")
    with pytest.raises(ModelError, match=rf"^{re.escape(str(path))}: cannot load the SCRFD model: ") as caught:
        ScrfdDetector(ScrfdConfig(model=path))
    assert "\n" not in str(caught.value)


def test_a_graph_of_another_layout_is_refused(tmp_path: Path) -> None:
    model = scrfd_graph(tmp_path / "other.onnx", outputs=2)
    with pytest.raises(ModelError, match=r"not an SCRFD model: 2 outputs, expected 6, 9, 10 or 15"):
        ScrfdDetector(ScrfdConfig(model=model))
