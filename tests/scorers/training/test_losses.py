"""The training losses against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from fiqa_stream.scorers.training.losses import MSECorrLoss, PLCCMSELoss, fidelity_rank_loss, pearson, plcc_loss

# p = [0, 1, 0], t = [1, 0, 0]: centred p = [-1/3, 2/3, -1/3], centred t = [2/3, -1/3, -1/3],
# dot = -1/3, both norms² = 2/3, so r = -1/2; MSE = (1 + 1 + 0) / 3 = 2/3.
ANTI_P = torch.tensor([0.0, 1.0, 0.0])
ANTI_T = torch.tensor([1.0, 0.0, 0.0])


def test_pearson_of_known_series() -> None:
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])).item() == pytest.approx(1.0)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])).item() == pytest.approx(-1.0)
    assert pearson(ANTI_P, ANTI_T).item() == pytest.approx(-0.5)


def test_mse_corr_loss_is_mse_when_perfectly_correlated() -> None:
    p = torch.tensor([0.2, 0.4, 0.6])
    t = torch.tensor([0.1, 0.2, 0.3])
    # r = 1; MSE = (0.01 + 0.04 + 0.09) / 3.
    assert MSECorrLoss(weight=2.0)(p, t).item() == pytest.approx(0.14 / 3, abs=1e-6)


@pytest.mark.parametrize(("weight", "expected"), [(1.0, 2 / 3 + 1.5), (0.5, 2 / 3 + 0.75), (0.0, 2 / 3)])
def test_mse_corr_loss_adds_the_weighted_correlation_gap(weight: float, expected: float) -> None:
    assert MSECorrLoss(weight)(ANTI_P, ANTI_T).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("p", "t", "expected"),
    [
        ([0.1, 0.5, 0.9], [1.0, 2.0, 3.0], 0.0),  # r = 1: scale and shift do not matter
        ([0.9, 0.5, 0.1], [1.0, 2.0, 3.0], 0.5),  # r = -1: (1 + 1)/4 + 0/8
        ([0.0, 1.0, 0.0], [1.0, 0.0, 0.0], 1.5 / 4 + 0.75 / 8),  # r = -1/2
        ([1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], 1 / 4 + 1 / 8),  # r = 0
    ],
)
def test_plcc_loss_of_known_correlations(p: list[float], t: list[float], expected: float) -> None:
    assert plcc_loss(torch.tensor(p), torch.tensor(t)).item() == pytest.approx(expected, abs=1e-6)


def test_plcc_mse_loss_adds_mse_and_weighted_plcc_term() -> None:
    # MSE 2/3 plus half of the r = -1/2 PLCC term.
    expected = 2 / 3 + 0.5 * (1.5 / 4 + 0.75 / 8)
    assert PLCCMSELoss(weight=0.5)(ANTI_P, ANTI_T).item() == pytest.approx(expected, abs=1e-6)


def test_fidelity_of_tied_predictions_on_an_ordered_pair() -> None:
    # P̂ = Φ(0) = 1/2 both ways, P = 1 and 0: each pair costs 1 - √(1/2).
    loss = fidelity_rank_loss(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(1 - math.sqrt(0.5), abs=1e-5)


def test_fidelity_of_separated_predictions() -> None:
    # Δ = 1, scale 1: P̂ = Φ(1/√2) = 0.7602499 for the right order; cost 1 - √P̂ per pair.
    loss = fidelity_rank_loss(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(1 - math.sqrt(0.7602499), abs=1e-5)
    wrong = fidelity_rank_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]))
    assert wrong.item() == pytest.approx(1 - math.sqrt(1 - 0.7602499), abs=1e-5)


def test_fidelity_of_tied_targets_and_predictions_is_zero() -> None:
    loss = fidelity_rank_loss(torch.tensor([0.3, 0.3, 0.3]), torch.tensor([0.7, 0.7, 0.7]))
    assert loss.item() == pytest.approx(0.0, abs=1e-5)


def test_fidelity_scale_sharpens_the_ranking_probability() -> None:
    p, t = torch.tensor([0.6, 0.5]), torch.tensor([1.0, 0.0])
    assert fidelity_rank_loss(p, t, scale=0.05) < fidelity_rank_loss(p, t, scale=1.0)


@pytest.mark.parametrize(
    "loss", [MSECorrLoss(), plcc_loss, PLCCMSELoss(), fidelity_rank_loss], ids=["msecorr", "plcc", "plccmse", "fid"]
)
def test_gradients_stay_finite_at_saturated_predictions(loss: torch.nn.Module) -> None:
    p = torch.tensor([0.0, 1.0, 1.0, 0.0], requires_grad=True)
    value = loss(p * 40.0, torch.tensor([1.0, 0.0, 0.5, 0.5]))
    value.backward()
    assert p.grad is not None
    assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("loss", [MSECorrLoss(), plcc_loss, fidelity_rank_loss], ids=["msecorr", "plcc", "fid"])
def test_losses_refuse_mismatched_or_single_sample_batches(loss: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"\(N,\)"):
        loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="at least 2"):
        loss(torch.zeros(1), torch.zeros(1))
