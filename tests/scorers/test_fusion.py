"""Fusion weights: fitted against utility, shipped beside the model, overridden by the config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fiqa_stream.scorers.weights as weights_module
from fiqa_stream.errors import ModelError
from fiqa_stream.scorers.config import FiqaScorerConfig, FiqaWeights
from fiqa_stream.scorers.fiqa import FUSED, FiqaScorer
from fiqa_stream.scorers.training.fusion import FittingSightings, fit_fusion, fit_weights

from .conftest import Scene


@pytest.fixture
def weights_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped weights folder (links to the real model files) the scorer reads instead."""
    for path in weights_module.FOLDER.iterdir():
        if path.suffix in (".onnx", ".safetensors"):
            (tmp_path / path.name).symlink_to(path)
    monkeypatch.setattr(weights_module, "FOLDER", tmp_path)
    return tmp_path


def _ship(folder: Path, model: str, weights: dict[str, float]) -> None:
    version = weights_module.shipped(model).version
    (folder / f"{version}.fusion.json").write_text(json.dumps({"weights": weights, "fitted_on": "test"}))


def test_fit_recovers_the_mix_that_ranks_utility() -> None:
    rng = np.random.default_rng(0)
    components = {name: rng.random(500) for name in FUSED}
    utility = 0.7 * components["model"] + 0.3 * components["sharpness"]
    fitted = fit_weights(components, utility, FUSED)
    assert sum(fitted.values()) == pytest.approx(1.0, abs=1e-3)
    assert fitted["model"] == pytest.approx(0.7, abs=0.08)
    assert fitted["sharpness"] == pytest.approx(0.3, abs=0.08)
    assert max(fitted[n] for n in ("exposure", "pose", "size", "confidence")) < 0.05


def _sightings(rng: np.random.Generator, people: int, model_knows_them: bool) -> FittingSightings:
    """8 sightings of each of ``people`` faces whose utility follows sharpness; the model
    has memorised the utility of the people it learnt and guesses on the others."""
    n = people * 8
    components = {name: rng.random(n) for name in FUSED}
    utility = components["sharpness"] + 0.3 * rng.random(n)
    components["model"] = utility + 0.01 * rng.random(n) if model_knows_them else rng.random(n)
    return FittingSightings(components, utility, np.repeat(np.arange(people), 8))


def test_the_model_share_is_fitted_on_people_it_never_learnt_and_the_components_mix_on_everyone() -> None:
    rng = np.random.default_rng(1)
    unseen, seen = _sightings(rng, 3, model_knows_them=False), _sightings(rng, 20, model_knows_them=True)
    # Fitted on the people it learnt, the model takes nearly everything ...
    assert fit_weights(seen.components, seen.utility, FUSED, seen.groups)["model"] > 0.8
    # ... which new people do not bear out: there its share is what they support.
    fitted = fit_fusion(unseen, seen, FUSED)
    assert sum(fitted.values()) == pytest.approx(1.0, abs=1e-3)
    assert fitted["model"] < 0.2
    assert fitted["sharpness"] == max(fitted.values())


def test_a_model_that_ranks_new_people_well_keeps_its_share() -> None:
    rng = np.random.default_rng(2)
    unseen, seen = _sightings(rng, 3, model_knows_them=True), _sightings(rng, 20, model_knows_them=True)
    assert fit_fusion(unseen, seen, FUSED)["model"] > 0.8
    assert fit_fusion(unseen, None, FUSED)["model"] > 0.8


def test_fusion_weights_load_with_the_model_and_the_config_wins(weights_folder: Path, astronaut: Scene) -> None:
    only_model = {name: 0.0 for name in FUSED} | {"model": 1.0}
    _ship(weights_folder, FiqaScorerConfig().model, only_model)
    faces = astronaut.faces()
    shipped = FiqaScorer(FiqaScorerConfig())
    assert shipped.fusion == FiqaWeights(**only_model)
    quality = shipped.score(faces)[0]
    assert quality.score == pytest.approx(quality.components["model"], abs=1e-6)

    override = FiqaWeights(model=0.0, sharpness=1.0, exposure=0.0, pose=0.0, size=0.0, confidence=0.0)
    configured = FiqaScorer(FiqaScorerConfig(weights=override))
    assert configured.fusion == override
    quality = configured.score(faces)[0]
    assert quality.score == pytest.approx(quality.components["sharpness"], abs=1e-6)
    # Another shipped model without a fitted file falls back to the defaults.
    assert FiqaScorer(FiqaScorerConfig(model="mspt")).fusion == FiqaWeights()


def test_a_broken_fusion_file_is_a_model_error(weights_folder: Path) -> None:
    version = weights_module.shipped(FiqaScorerConfig().model).version
    (weights_folder / f"{version}.fusion.json").write_text("{\"weights\": 3}")
    with pytest.raises(ModelError, match="fusion"):
        FiqaScorer(FiqaScorerConfig())


def test_the_default_scorer_uses_the_fusion_shipped_with_its_model() -> None:
    config = FiqaScorerConfig()
    spec = weights_module.shipped(config.model)
    fitted = json.loads((weights_module.FOLDER / f"{spec.version}.fusion.json").read_text())
    assert FiqaScorer(config).fusion == FiqaWeights(**fitted["weights"])
    # Fitted on the validation identities, which no model learnt from.
    assert "fusion-val" in fitted["fitted_on"]
