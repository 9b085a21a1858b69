"""Training losses of the three recipes, each over one batch of (N,) predictions and targets.

* ``MSECorrLoss`` (seed 001): ``MSE + λ·(1 − r)``, with ``r`` the batch Pearson correlation.
* ``plcc_loss`` (seed 002, after its reference code): predictions and targets are each
  standardised in the batch (zero mean, unit population deviation), giving ``p̂`` and
  ``ŷ`` with ``mean(p̂·ŷ) = r``. The loss averages two squared errors, each over 4:
  ``mean((p̂ − ŷ)²)/4 = (1 − r)/2`` and ``mean((r·p̂ − ŷ)²)/4 = (1 − r²)/4``,
  so ``plcc_loss = (1 − r)/4 + (1 − r²)/8``: 0 at ``r = 1``, ½ at ``r = −1``.
  Seed 002 adds it to the MSE (``PLCCMSELoss``).
* ``fidelity_rank_loss`` (Tsai et al., 2007; used for IQA by UNIQUE and seed 002's
  authors): for every pair i ≠ j, the predicted probability that i beats j is
  ``P̂ = Φ((p_i − p_j)/√2)`` (Thurstone's model, unit-variance scores) and the target
  one ``P = 1, ½, 0`` as ``y_i >, =, < y_j``; the loss is the pairs' mean of
  ``1 − √(P·P̂) − √((1 − P)(1 − P̂))``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_EPS = 1e-8
_SQRT_EPS = 1e-12


def pearson(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two (N,) tensors, differentiable; 0 where either is constant."""
    p = predictions - predictions.mean()
    t = targets - targets.mean()
    return (p * t).sum() / (p.norm() * t.norm() + _EPS)


def _check(predictions: torch.Tensor, targets: torch.Tensor) -> None:
    if predictions.shape != targets.shape or predictions.ndim != 1:
        raise ValueError(f"predictions and targets must both be (N,), got {predictions.shape} and {targets.shape}")
    if predictions.shape[0] < 2:
        raise ValueError("a correlation loss needs a batch of at least 2")


class MSECorrLoss(nn.Module):
    """Seed 001's correlation-aware loss: ``MSE + λ·(1 − r)``.

    Args:
        weight: λ, the weight of the Pearson term.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check(predictions, targets)
        mse = nn.functional.mse_loss(predictions, targets)
        return mse + self.weight * (1.0 - pearson(predictions, targets))


def plcc_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Seed 002's batch-normalised PLCC loss, ``(1 − r)/4 + (1 − r²)/8`` (see the module docstring)."""
    _check(predictions, targets)
    p_std, p_mean = torch.std_mean(predictions, unbiased=False)
    t_std, t_mean = torch.std_mean(targets, unbiased=False)
    p = (predictions - p_mean) / (p_std + _EPS)
    t = (targets - t_mean) / (t_std + _EPS)
    r = (p * t).mean()
    aligned = nn.functional.mse_loss(p, t) / 4
    scaled = nn.functional.mse_loss(r * p, t) / 4
    return (aligned + scaled) / 2


class PLCCMSELoss(nn.Module):
    """Seed 002's student and teacher loss: ``MSE + λ·plcc_loss``.

    Args:
        weight: λ, the weight of the PLCC term.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(predictions, targets) + self.weight * plcc_loss(predictions, targets)


def fidelity_rank_loss(predictions: torch.Tensor, targets: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The mean fidelity loss over all ordered pairs of the batch (see the module docstring).

    Args:
        predictions: (N,) predicted scores.
        targets: (N,) target scores; only their order matters.
        scale: the predictions' noise standard deviation in Thurstone's model; score
            differences are divided by ``scale·√2``. Scores in [0, 1] train better with
            a scale well below 1 (e.g. 0.1).
    """
    _check(predictions, targets)
    difference = (predictions[:, None] - predictions[None, :]) / (scale * math.sqrt(2.0))
    predicted = 0.5 * (1.0 + torch.erf(difference / math.sqrt(2.0)))
    target = (torch.sign(targets[:, None] - targets[None, :]) + 1.0) / 2.0
    # The tiny offset keeps the square roots' gradients finite where P̂ saturates at 0 or 1.
    fidelity = (
        1.0 - torch.sqrt(target * predicted + _SQRT_EPS) - torch.sqrt((1.0 - target) * (1.0 - predicted) + _SQRT_EPS)
    )
    off_diagonal = ~torch.eye(predictions.shape[0], dtype=torch.bool, device=predictions.device)
    return fidelity[off_diagonal].mean()
