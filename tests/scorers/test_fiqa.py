"""The learned scorer: configured by type ``fiqa``, fused with the weight-free components, run in the pipeline."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.errors import ConfigError
from fiqa_stream.media.clips import compose_face_clip
from fiqa_stream.runtime import Runtime
from fiqa_stream.scorers import build_scorer
from fiqa_stream.scorers.config import FiqaScorerConfig, FiqaWeights, HeuristicScorerConfig
from fiqa_stream.scorers.fiqa import FUSED, FiqaScorer, runs_int8
from fiqa_stream.scorers.heuristic import HeuristicScorer
from fiqa_stream.scorers.weights import SHIPPED
from fiqa_stream.stream.pipeline import Pipeline

from .conftest import Scene


def test_the_default_config_scores_with_the_student_trained_on_recognition_utility() -> None:
    config = parse_config({"sources": [{"url": "demo:"}], "sinks": [{"type": "directory", "path": "out"}]})
    assert config.scorer.type == "fiqa" and config.scorer.model == "student-utility"
    scorer = build_scorer(config.scorer)
    assert isinstance(scorer, FiqaScorer) and scorer.model == f"{SHIPPED['student-utility'].version}+int8"


def test_the_cpu_runs_the_integer_model_where_one_ships_and_cuda_the_float_one() -> None:
    default = FiqaScorerConfig()
    assert runs_int8(default, "cpu") and not runs_int8(default, "cuda:0")
    assert not runs_int8(FiqaScorerConfig(model="mspt"), "cpu")
    assert not runs_int8(FiqaScorerConfig(precision="float32"), "cpu")
    assert FiqaScorer(FiqaScorerConfig(precision="float32")).model == SHIPPED["student-utility"].version


def test_the_integer_model_ranks_sightings_as_the_float_one_does(astronaut: Scene) -> None:
    import cv2

    faces = [face for sigma in (0.0, 1.0, 2.0, 3.0, 5.0)
             for face in astronaut.faces(cv2.GaussianBlur(astronaut.image, (0, 0), sigma) if sigma else None)]
    integer = FiqaScorer(FiqaScorerConfig(precision="int8"))
    floating = FiqaScorer(FiqaScorerConfig(precision="float32"))
    fast, exact = integer.model_scores(integer.crops(faces)), floating.model_scores(floating.crops(faces))
    assert np.argsort(-fast).tolist() == np.argsort(-exact).tolist() == [0, 1, 2, 3, 4]
    assert np.abs(fast - exact).max() < 0.1


def test_int8_for_a_model_shipped_without_one_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"scorer.*precision: int8: model 'mspt' ships no int8 model"):
        parse_config({"sources": [{"url": "demo:"}], "sinks": [{"type": "directory", "path": "out"}],
                      "scorer": {"type": "fiqa", "model": "mspt", "precision": "int8"}})


def test_qualities_carry_the_model_score_and_every_weight_free_component(scene: Scene) -> None:
    qualities = FiqaScorer(FiqaScorerConfig()).score(scene.faces())
    assert len(qualities) == len(scene.boxes)
    for quality in qualities:
        assert set(quality.components) == set(FUSED)
        assert all(0.0 <= v <= 1.0 for v in quality.components.values())


def test_the_fused_score_is_the_weighted_mean_of_the_components(astronaut: Scene) -> None:
    weights = FiqaWeights(model=2.0, sharpness=1.0, exposure=0.0, pose=1.0, size=0.0, confidence=0.0)
    quality = FiqaScorer(FiqaScorerConfig(weights=weights)).score(astronaut.faces())[0]
    c = quality.components
    assert quality.score == pytest.approx((2 * c["model"] + c["sharpness"] + c["pose"]) / 4)


def test_the_weight_free_components_match_the_heuristic_scorer(astronaut: Scene) -> None:
    learned = FiqaScorer(FiqaScorerConfig()).score(astronaut.faces())[0]
    plain = HeuristicScorer(HeuristicScorerConfig()).score(astronaut.faces())[0]
    assert {k: v for k, v in learned.components.items() if k != "model"} == pytest.approx(dict(plain.components))


def test_batches_larger_than_the_chunk_give_the_same_scores(group: Scene) -> None:
    faces = group.faces()
    whole = FiqaScorer(FiqaScorerConfig(batch_size=64)).score(faces)
    chunked = FiqaScorer(FiqaScorerConfig(batch_size=4)).score(faces)
    np.testing.assert_allclose([q.score for q in whole], [q.score for q in chunked], atol=1e-6)


def test_faces_without_landmarks_are_aligned_from_their_box(astronaut: Scene) -> None:
    quality = FiqaScorer(FiqaScorerConfig()).score(astronaut.faces(landmarks=False))[0]
    assert 0.0 <= quality.components["model"] <= 1.0


def test_a_blurred_face_scores_lower_than_the_sharp_one(astronaut: Scene) -> None:
    import cv2

    scorer = FiqaScorer(FiqaScorerConfig())
    sharp = scorer.score(astronaut.faces())[0]
    blurred = scorer.score(astronaut.faces(cv2.GaussianBlur(astronaut.image, (0, 0), 4.0)))[0]
    assert blurred.components["model"] < sharp.components["model"]


def test_all_zero_weights_are_refused() -> None:
    zero = FiqaWeights(model=0, sharpness=0, exposure=0, pose=0, size=0, confidence=0)
    with pytest.raises(ValueError, match="must not all be zero"):
        FiqaScorer(FiqaScorerConfig(weights=zero))


def test_an_unknown_model_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="scorer.model"):
        parse_config({"sources": [{"url": "demo:"}], "sinks": [{"type": "directory", "path": "out"}],
                      "scorer": {"type": "fiqa", "model": "teacher"}})


@pytest.mark.slow
def test_a_fiqa_configured_pipeline_picks_each_face_at_its_best(tmp_path: Path) -> None:
    clip = compose_face_clip(tmp_path / "clip.mp4", width=640, height=360, fps=10.0, seconds=4.0, faces=2, seed=3)
    out = tmp_path / "out"
    config = parse_config({
        "sources": [{"url": str(clip.path), "id": "clip"}],
        "scorer": {"type": "fiqa", "model": "mspt"},
        "sinks": [{"type": "directory", "path": str(out)}],
        "pipeline": {"progress": "off"},
    })
    assert Pipeline(config).run().ok
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(events) == len(clip.faces)
    for event in events:
        assert event["model"] == "fiqa-mspt-1" and "model" in event["components"]
    for event in events:
        index, (x1, y1, x2, y2) = event["frame_index"], event["box"]
        visible = [face for face in clip.faces if index in face.centers]
        face = min(visible, key=lambda f: (f.centers[index][0] - (x1 + x2) / 2) ** 2
                   + (f.centers[index][1] - (y1 + y2) / 2) ** 2)
        first, last = face.best_frames
        assert first <= index <= last, f"face {face.face_id}: best at {index}, window {face.best_frames}"


def test_scoring_needs_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from fiqa_stream.scorers.config import FiqaScorerConfig\n"
        "from fiqa_stream.scorers.fiqa import FiqaScorer\n"
        "FiqaScorer(FiqaScorerConfig()).model_scores(np.zeros((2, 112, 112, 3), np.uint8))\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_scorer_runs_where_the_device_says_and_falls_back_to_the_cpu_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: ["CPUExecutionProvider"])
    with caplog.at_level(logging.INFO, logger="fiqa_stream.providers"):
        scorer = build_scorer(FiqaScorerConfig(), Runtime("cuda:0"))
    assert isinstance(scorer, FiqaScorer)
    assert "scorer fiqa: onnxruntime on the CPU although device is cuda:0" in caplog.text
