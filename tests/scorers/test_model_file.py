"""A model of the user's own: the fiqa scorer runs an ONNX file named by its path, with its fusion weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.errors import ConfigError, ModelError
from fiqa_stream.scorers.config import FiqaScorerConfig, FiqaWeights
from fiqa_stream.scorers.fiqa import FUSED, FiqaScorer
from fiqa_stream.scorers.model_file import ModelFile, scorer_model
from fiqa_stream.scorers.weights import SHIPPED

from .conftest import Scene


@pytest.fixture
def own_model(tmp_path: Path) -> Path:
    """The shipped mspt model's ONNX file, copied to a folder of the user's as ``mine.onnx``."""
    path = tmp_path / "mine.onnx"
    shutil.copyfile(SHIPPED["mspt"].onnx, path)
    return path


def _config(model: object, **keys: object) -> object:
    return parse_config({"sources": [{"url": "demo:"}], "sinks": [{"type": "directory", "path": "out"}],
                         "scorer": {"type": "fiqa", "model": model, **keys}}).scorer


def test_a_model_file_scores_as_the_same_shipped_model_does(own_model: Path, astronaut: Scene) -> None:
    weights = FiqaWeights(model=1.0, sharpness=1.0, exposure=0.0, pose=0.0, size=0.0, confidence=0.0)
    mine = FiqaScorer(_config(str(own_model), weights=weights.model_dump()))  # type: ignore[arg-type]
    shipped = FiqaScorer(FiqaScorerConfig(model="mspt", weights=weights))
    faces = astronaut.faces()
    assert mine.model == "mine" and mine.input_size == 112
    assert [q.score for q in mine.score(faces)] == pytest.approx([q.score for q in shipped.score(faces)], abs=1e-6)


def test_the_fusion_weights_beside_the_file_load_with_it_and_the_config_wins(own_model: Path,
                                                                             astronaut: Scene) -> None:
    only_model = {name: 0.0 for name in FUSED} | {"model": 1.0}
    assert FiqaScorer(FiqaScorerConfig(model=own_model)).fusion == FiqaWeights()
    own_model.with_name("mine.fusion.json").write_text(json.dumps({"weights": only_model}))
    fitted = FiqaScorer(FiqaScorerConfig(model=own_model))
    assert fitted.fusion == FiqaWeights(**only_model)
    quality = fitted.score(astronaut.faces())[0]
    assert quality.score == pytest.approx(quality.components["model"], abs=1e-6)
    override = FiqaWeights(model=0.0, sharpness=1.0, exposure=0.0, pose=0.0, size=0.0, confidence=0.0)
    assert FiqaScorer(FiqaScorerConfig(model=own_model, weights=override)).fusion == override


def test_an_int8_export_keeps_the_plain_name_and_its_fusion_file(own_model: Path) -> None:
    int8 = own_model.rename(own_model.with_name("mine.int8.onnx"))
    int8.with_name("mine.fusion.json").write_text(json.dumps({"weights": {"model": 1.0}}))
    spec = scorer_model(int8)
    assert isinstance(spec, ModelFile) and spec.version == "mine" and spec.fusion_weights() == {"model": 1.0}


def test_a_shipped_name_still_names_the_shipped_model() -> None:
    assert scorer_model("mspt") is SHIPPED["mspt"]


@pytest.mark.parametrize(("model", "error"), [
    ("studnet", r"scorer.model.*'studnet' is neither a shipped model .* \(did you mean 'student'\?\) nor an .onnx"),
    ("missing.onnx", r"scorer.model.*missing.onnx: no such ONNX model file"),
])
def test_a_model_that_is_neither_shipped_nor_an_onnx_file_is_refused_naming_the_key(model: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        _config(model)


def test_int8_precision_for_a_model_file_is_refused_naming_the_key(own_model: Path) -> None:
    with pytest.raises(ConfigError, match=r"scorer.*precision: int8: model file .*mine.onnx runs as it is"):
        _config(str(own_model), precision="int8")


def test_a_file_whose_input_is_not_a_batch_of_square_crops_is_a_model_error(tmp_path: Path) -> None:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input"], ["output"])], "flat",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 128])],
        [onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", 128])])
    path = tmp_path / "flat.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError, match=r"flat.onnx: input is \['N', 128\], not N×3×S×S"):
        FiqaScorer(FiqaScorerConfig(model=path))


def test_a_file_onnxruntime_cannot_load_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(np.zeros(64, np.uint8).tobytes())
    with pytest.raises(ModelError, match="broken.onnx: onnxruntime cannot load the model"):
        FiqaScorer(FiqaScorerConfig(model=path))


def test_the_config_names_exactly_the_shipped_models() -> None:
    from typing import get_args

    from fiqa_stream.scorers.config import ShippedName

    assert set(get_args(ShippedName)) == set(SHIPPED)
