"""The shipped models: pinned files, within the challenge limits, ONNX equal to torch, ranking held-out faces."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from fiqa_stream.errors import ConfigError, ModelError
from fiqa_stream.media.faces import face_photos
from fiqa_stream.scorers import weights
from fiqa_stream.scorers.align import align_face
from fiqa_stream.scorers.config import FiqaScorerConfig
from fiqa_stream.scorers.fiqa import FiqaScorer
from fiqa_stream.scorers.models import MAX_GMACS, MAX_PARAMS
from fiqa_stream.scorers.models.complexity import count
from fiqa_stream.scorers.models.preprocess import crops_to_tensor
from fiqa_stream.scorers.training.degradation_set import SPLIT_FRACTIONS, detect_landmarks, split_by_face
from fiqa_stream.scorers.training.degradations import (
    defocus_blur,
    gaussian_noise,
    low_light,
    low_resolution,
    motion_blur,
    underexposure,
)

SHIPPED = sorted(weights.SHIPPED)
MAX_FILE_BYTES = 10 * 2**20


@pytest.fixture(scope="module")
def held_out_faces() -> list[np.ndarray]:
    """The aligned crops of the degradation set's test faces (never trained or validated on)."""
    photos = face_photos()
    test_ids = split_by_face(list(range(len(photos))), SPLIT_FRACTIONS, 0).test
    crops = []
    for face_id in test_ids:
        landmarks = detect_landmarks(photos[face_id])
        assert landmarks is not None
        crops.append(align_face(photos[face_id], landmarks, np.zeros(4, np.float32), 112))
    return crops


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_are_pinned_and_small(name: str) -> None:
    model = weights.shipped(name)
    assert re.fullmatch(rf"fiqa-{name}-[1-9][0-9]*", model.version)
    integer = [] if model.int8_onnx_sha256 is None else [model.int8_onnx]
    for path in (model.safetensors, model.onnx, *integer):
        assert path.stat().st_size < MAX_FILE_BYTES


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_meet_the_challenge_limits_at_their_input_size(name: str) -> None:
    cost = count(weights.load_shipped(name), weights.shipped(name).input_size)
    assert cost.params <= MAX_PARAMS and 0 < cost.gmacs <= MAX_GMACS


@pytest.mark.parametrize("name", SHIPPED)
def test_onnx_scores_equal_torch_scores(name: str, held_out_faces: list[np.ndarray]) -> None:
    crops = np.stack([*held_out_faces, *(defocus_blur(c, 0.5, np.random.default_rng(0)) for c in held_out_faces)])
    scorer = FiqaScorer(FiqaScorerConfig(model=name, precision="float32"))
    with torch.no_grad():
        expected = weights.load_shipped(name)(crops_to_tensor(crops)).numpy()
    np.testing.assert_allclose(scorer.model_scores(crops), expected, atol=1e-4)


@pytest.mark.parametrize(
    "degrade", [defocus_blur, motion_blur, gaussian_noise, underexposure, low_light, low_resolution],
    ids=lambda f: f.__name__,
)
def test_the_default_model_ranks_a_held_out_face_by_degradation(degrade, held_out_faces: list[np.ndarray]) -> None:
    scorer = FiqaScorer(FiqaScorerConfig())
    severities = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    for face in held_out_faces:
        crops = [face if s == 0 else degrade(face, s, np.random.default_rng(0)) for s in severities]
        scores = scorer.model_scores(np.stack(crops))
        srcc = stats.spearmanr(scores, [-s for s in severities])[0]
        assert srcc >= 0.9, f"{degrade.__name__}: scores {np.round(scores, 3)} by severity {severities}"


def test_a_corrupt_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = weights.shipped("student")
    copy = tmp_path / f"{model.version}.onnx"
    shutil.copy(model.onnx, copy)
    with copy.open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 0xFF]))
    monkeypatch.setattr(weights, "FOLDER", tmp_path)
    with pytest.raises(ModelError, match="SHA-256 .* differs"):
        _ = model.onnx


def test_a_missing_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "FOLDER", tmp_path)
    with pytest.raises(ModelError, match="fiqa-mspt-1.safetensors: shipped model file is missing"):
        _ = weights.shipped("mspt").safetensors


def test_an_unknown_shipped_model_gets_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'student'"):
        weights.shipped("studnt")
