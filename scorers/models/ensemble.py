"""Seed 001's ensemble: MobileNetV3-Small and ShuffleNetV2 regressors, predictions averaged."""

from __future__ import annotations

import torch
from torch import nn

from fiqa_stream.scorers.models.mobilenet_v3_small import MobileNetV3SmallRegressor
from fiqa_stream.scorers.models.shufflenet_v2 import ShuffleNetV2Regressor


class AveragingEnsemble(nn.Module):
    """The mean of the members' scores (prediction-level fusion by simple averaging).

    Members are trained separately (each with MSECorrLoss in seed 001) and loaded into
    ``members``; the ensemble itself has no parameters of its own.

    Args:
        members: regressors mapping the same input to (N,) scores in [0, 1]; by default
            MobileNetV3-Small and ShuffleNetV2 x0.5.
    """

    def __init__(self, members: list[nn.Module] | None = None) -> None:
        super().__init__()
        chosen = members if members is not None else [MobileNetV3SmallRegressor(), ShuffleNetV2Regressor()]
        if not chosen:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(chosen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(0)
