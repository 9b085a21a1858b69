"""A degradation added to a face never makes it easier to recognise: ranking pairs that teach a score so.

Utility labels hardly move under mild darkness, low resolution or light noise (the
recogniser shrugs them off), so in those ranges a model learns the labels' noise and can
score a slightly darkened face above the clean one. A stage with ``monotone`` set trains
on pairs besides its labelled batch: at every step a few clean training crops, each
through one degradation at two severities (the milder one none at all half the time,
both with the same random draws), and a hinge that costs whenever the harsher one does not
score below the milder by ``margin`` times the difference of their severities (0: an
order only, never a gap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fiqa_stream.scorers.models.preprocess import crops_to_tensor
from fiqa_stream.scorers.training.degradations import DEGRADATIONS
from fiqa_stream.scorers.training.recipe import Monotone


@dataclass(frozen=True)
class PairBatch:
    """Model input of the milder and of the harsher crop of each pair (N×3×S×S each), and their severities' gap (N)."""

    milder: torch.Tensor
    harsher: torch.Tensor
    gaps: torch.Tensor

    def __len__(self) -> int:
        return len(self.gaps)


class MonotonePairs:
    """Pairs (milder, harsher) of clean crops through one degradation, drawn afresh at every call.

    Args:
        crops: clean BGR uint8 crops.
        config: the stage's ``monotone`` (degradations, pairs per batch, weight, margin).
        input_size: the model's input side.
        seed: seeds every draw.

    Raises:
        ValueError: no crops.
    """

    def __init__(self, crops: Sequence[np.ndarray], config: Monotone, input_size: int, seed: int) -> None:
        if not crops:
            raise ValueError("monotone pairs need at least one clean crop")
        self.crops, self.config, self.input_size = list(crops), config, input_size
        self.rng = np.random.default_rng(seed)

    def batch(self) -> PairBatch:
        """``config.pairs`` new pairs."""
        milder, harsher, gaps = [], [], []
        names = self.config.degradations
        for _ in range(self.config.pairs):
            crop = self.crops[int(self.rng.integers(len(self.crops)))]
            degrade = DEGRADATIONS[names[int(self.rng.integers(len(names)))]]
            low, high = np.sort(self.rng.uniform(0.0, 1.0, 2))
            if self.rng.random() < 0.5:
                low = 0.0
            draws = int(self.rng.integers(2**31))
            milder.append(crop if low == 0.0 else degrade(crop, float(low), np.random.default_rng(draws)))
            harsher.append(degrade(crop, float(high), np.random.default_rng(draws)))
            gaps.append(high - low)
        return PairBatch(crops_to_tensor(np.stack(milder), self.input_size),
                         crops_to_tensor(np.stack(harsher), self.input_size), torch.tensor(gaps, dtype=torch.float32))

    def cost(self, milder: torch.Tensor, harsher: torch.Tensor, batch: PairBatch) -> torch.Tensor:
        """The weighted disorder loss of the scores of ``batch``'s milder and harsher crops."""
        required = self.config.margin * batch.gaps.to(milder.device)
        return self.config.weight * disorder_loss(milder, harsher, required)


def disorder_loss(
    milder: torch.Tensor, harsher: torch.Tensor, required_drop: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Mean amount by which each harsher crop scores above its milder one less ``required_drop``
    (0 when every pair is in order by that much)."""
    return torch.relu(harsher - milder + required_drop).mean()
