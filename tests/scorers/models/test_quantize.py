"""The 8-bit integer models: written from the float ONNX export, calibrated on face crops, ranking as it does."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from fiqa_stream.media.faces import face_photos
from fiqa_stream.scorers.align import align_face
from fiqa_stream.scorers.models.preprocess import crops_to_array
from fiqa_stream.scorers.models.quantize import FLOAT_STEM_CONVS, quantize_int8
from fiqa_stream.scorers.training.degradation_set import detect_landmarks
from fiqa_stream.scorers.training.degradations import defocus_blur
from fiqa_stream.scorers.weights import shipped


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    out = []
    for photo in face_photos()[:4]:
        landmarks = detect_landmarks(photo)
        assert landmarks is not None
        out.append(align_face(photo, landmarks, np.zeros(4, np.float32), 112))
    return np.stack(out)


def _scores(path: Path, crops: np.ndarray,
            optimisation: onnxruntime.GraphOptimizationLevel = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            ) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = optimisation
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: crops_to_array(crops)})[0].reshape(-1)


def test_the_integer_model_follows_the_float_one_on_blurred_faces(crops: np.ndarray, tmp_path: Path) -> None:
    source = shipped("mspt").onnx
    target = quantize_int8(source, tmp_path / "mspt.int8.onnx", crops)
    face = crops[0]
    ladder = np.stack([face, *(defocus_blur(face, s, np.random.default_rng(0)) for s in (0.3, 0.6, 1.0))])
    fast, exact = _scores(target, ladder), _scores(source, ladder)
    assert np.argsort(-fast).tolist() == np.argsort(-exact).tolist()
    assert np.abs(fast - exact).max() < 0.1
    assert target.stat().st_size < source.stat().st_size / 2


def test_this_cpus_integer_kernels_compute_what_the_quantised_graph_says(crops: np.ndarray, tmp_path: Path) -> None:
    # Without VNNI, onnxruntime's u8s8 kernels add pairs of products in 16 bits; 8-bit weights
    # overflowed there on an AVX2 CPU (mspt's score fell by 0.2 on average). 7-bit weights fit.
    target = quantize_int8(shipped("mspt").onnx, tmp_path / "mspt.int8.onnx", crops)
    rng = np.random.default_rng(0)
    faces = np.concatenate([crops, [defocus_blur(face, 0.5, rng) for face in crops], crops // 3])
    fused = _scores(target, faces)
    plain = _scores(target, faces, onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert np.abs(fused - plain).max() < 0.02


def test_the_stem_convolutions_stay_float(crops: np.ndarray, tmp_path: Path) -> None:
    target = quantize_int8(shipped("mspt").onnx, tmp_path / "mspt.int8.onnx", crops)
    graph = onnx.load(str(target)).graph
    dequantised = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    fed_integers = [any(name in dequantised for name in node.input) for node in convolutions]
    assert not any(fed_integers[:FLOAT_STEM_CONVS]) and all(fed_integers[FLOAT_STEM_CONVS:])


def test_the_score_keeps_its_resolution_among_good_faces(crops: np.ndarray, tmp_path: Path) -> None:
    # A best shot is picked among a track's good frames: scores that differ there must not tie.
    source = shipped("student-utility").onnx
    target = quantize_int8(source, tmp_path / "student.int8.onnx", crops)
    rng = np.random.default_rng(0)
    nearly_clean = np.stack([defocus_blur(face, s, rng) for face in crops for s in np.linspace(0.05, 0.3, 8)])
    distinct = len(np.unique(_scores(source, nearly_clean)))
    assert distinct >= 24
    assert len(np.unique(_scores(target, nearly_clean))) == distinct


def test_the_same_crops_give_the_same_file(crops: np.ndarray, tmp_path: Path) -> None:
    first = quantize_int8(shipped("mspt").onnx, tmp_path / "a.onnx", crops)
    second = quantize_int8(shipped("mspt").onnx, tmp_path / "b.onnx", crops)
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_calibration_needs_crops(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs calibration crops"):
        quantize_int8(shipped("mspt").onnx, tmp_path / "x.onnx", np.zeros((0, 112, 112, 3), np.uint8))


def test_the_shipped_integer_model_is_the_float_one_calibrated(crops: np.ndarray) -> None:
    model = shipped("student-utility")
    fast, exact = _scores(model.int8_onnx, crops), _scores(model.onnx, crops)
    assert np.abs(fast - exact).max() < 0.1
