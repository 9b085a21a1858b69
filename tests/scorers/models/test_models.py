"""The registered architectures: they build, score in [0, 1], and the shipped ones meet the challenge limits."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models import MAX_GMACS, MAX_PARAMS, MODELS, build_model, model_spec
from fiqa_stream.scorers.models.complexity import complexity, count
from fiqa_stream.scorers.models.ensemble import AveragingEnsemble
from fiqa_stream.scorers.models.mobilenet_v2 import MobileNetV2Regressor
from fiqa_stream.scorers.models.mobilenet_v3_small import MobileNetV3SmallRegressor
from fiqa_stream.scorers.models.mspt import mean_std_pool
from fiqa_stream.scorers.models.shufflenet_v2 import ShuffleNetV2Regressor, channel_shuffle

SHIPPED = [name for name, spec in MODELS.items() if spec.shipped]


def test_the_registry_holds_the_seeds_models() -> None:
    assert set(MODELS) == {
        "mobilenet_v3_small", "shufflenet_v2", "ensemble", "mspt", "student", "teacher", "edgenext_xx_small"
    }
    assert not MODELS["teacher"].shipped
    assert {name for name, spec in MODELS.items() if spec.imagenet} == {"student", "teacher"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_scores_a_batch_in_the_unit_interval(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        scores = model(torch.randn(2, 3, 64, 64))
    assert scores.shape == (2,)
    assert torch.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_learns_from_a_gradient_step(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name).train()
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_meet_the_challenge_limits_at_their_input_size(name: str) -> None:
    cost = complexity(name)
    assert cost.input_size == model_spec(name).input_size
    assert cost.params <= MAX_PARAMS
    assert 0 < cost.gmacs <= MAX_GMACS


def test_the_teacher_computes_far_more_than_the_student() -> None:
    teacher, student = complexity("teacher"), complexity("student")
    assert teacher.input_size == 2 * student.input_size
    assert teacher.gmacs > 3.5 * student.gmacs and teacher.params > student.params


def test_the_edgenext_architecture_is_xx_small_sized() -> None:
    # Seed 002 reports 1.18 M parameters for its EdgeNeXt-XX-Small student.
    assert 1.0e6 < complexity("edgenext_xx_small").params < 1.4e6


def test_the_mobilenet_v2_trunk_has_torchvisions_layout() -> None:
    # As in the ImageNet file: 52 convolutions, 52 batch norms (5 tensors each), 312 tensors under features.*.
    trunk = {key: value for key, value in build_model("teacher").state_dict().items() if key.startswith("features.")}
    assert len(trunk) == 312
    assert trunk["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert trunk["features.17.conv.2.weight"].shape == (320, 960, 1, 1)
    assert trunk["features.18.0.weight"].shape == (1280, 320, 1, 1)


def test_the_student_trunk_stops_before_the_final_convolution() -> None:
    student = {key for key in build_model("student").state_dict() if key.startswith("features.")}
    teacher = {key for key in build_model("teacher").state_dict() if key.startswith("features.")}
    assert teacher - student == {key for key in teacher if key.startswith("features.18.")}
    assert student < teacher


def test_the_mobilenet_v2_trunk_refuses_other_weights() -> None:
    with pytest.raises(ValueError, match="not torchvision MobileNetV2 weights"):
        MobileNetV2Regressor().load_imagenet({"features.0.0.weight": torch.zeros(1)})


def test_macs_grow_with_the_square_of_the_input_side() -> None:
    model = MobileNetV3SmallRegressor()
    small, large = count(model, 224), count(model, 448)
    # Not exactly 4×: the head and the squeeze-excite layers cost the same at any size.
    assert large.gmacs == pytest.approx(4 * small.gmacs, rel=0.05)


def test_counting_leaves_the_model_in_training_mode() -> None:
    model = MobileNetV3SmallRegressor().train()
    count(model, 64)
    assert model.training


def test_an_unknown_name_fails_with_a_did_you_mean_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'student'"):
        build_model("studnet")


def test_the_ensemble_averages_its_members() -> None:
    torch.manual_seed(0)
    members = [MobileNetV3SmallRegressor().eval(), ShuffleNetV2Regressor(0.5).eval()]
    ensemble = AveragingEnsemble(members).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = (members[0](x) + members[1](x)) / 2
        assert torch.allclose(ensemble(x), expected)


def test_an_empty_ensemble_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        AveragingEnsemble([])


def test_an_unknown_shufflenet_width_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        ShuffleNetV2Regressor(0.75)


def test_channel_shuffle_interleaves_the_two_halves() -> None:
    x = torch.arange(4.0).view(1, 4, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 2.0, 1.0, 3.0]


def test_mean_std_pool_gives_each_channels_mean_then_deviation() -> None:
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])
    assert mean_std_pool(x).tolist() == [[2.0, 2.0, 1.0, 0.0]]


def test_the_registry_and_preprocessing_import_without_torch() -> None:
    code = "import sys, fiqa_stream.scorers.models.preprocess; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
