"""A degradation added to a face never makes it easier to recognise: ranking pairs that teach a score so.

Utility labels hardly move under mild darkness, low resolution or light noise (the
recogniser shrugs them off), so in those ranges a model learns the labels' noise and can
score a slightly darkened face above the clean one. A stage with ``monotone`` set trains
on pairs besides its labelled batch: at every step a few clean training crops, each
through one degradation at two severities (the milder one none at all half the time,
both with the same random draws), and a hinge that costs whenever the harsher one scores
above the milder. It asks for an order only, never a gap, so where recognition truly does
not suffer the two may score alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fiqa_stream.scorers.models.preprocess import crops_to_tensor
from fiqa_stream.scorers.training.degradations import DEGRADATIONS


class MonotonePairs:
    """Pairs (milder, harsher) of clean crops through one degradation, drawn afresh at every call.

    Args:
        crops: clean BGR uint8 crops.
        degradations: names in ``DEGRADATIONS`` to draw from, alike.
        pairs: pairs per batch.
        input_size: the model's input side.
        seed: seeds every draw.

    Raises:
        ValueError: no crops, or an unknown degradation.
    """

    def __init__(
        self, crops: Sequence[np.ndarray], degradations: Sequence[str], pairs: int, input_size: int, seed: int
    ) -> None:
        if not crops:
            raise ValueError("monotone pairs need at least one clean crop")
        unknown = [name for name in degradations if name not in DEGRADATIONS]
        if unknown or not degradations:
            raise ValueError(f"unknown degradations {unknown}; known: {', '.join(DEGRADATIONS)}")
        self.crops, self.degradations = list(crops), list(degradations)
        self.pairs, self.input_size = pairs, input_size
        self.rng = np.random.default_rng(seed)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Model input of the milder and of the harsher crop of each pair (N×3×S×S each)."""
        milder, harsher = [], []
        for _ in range(self.pairs):
            crop = self.crops[int(self.rng.integers(len(self.crops)))]
            degrade = DEGRADATIONS[self.degradations[int(self.rng.integers(len(self.degradations)))]]
            low, high = np.sort(self.rng.uniform(0.0, 1.0, 2))
            if self.rng.random() < 0.5:
                low = 0.0
            draws = int(self.rng.integers(2**31))
            milder.append(crop if low == 0.0 else degrade(crop, float(low), np.random.default_rng(draws)))
            harsher.append(degrade(crop, float(high), np.random.default_rng(draws)))
        return crops_to_tensor(np.stack(milder), self.input_size), crops_to_tensor(np.stack(harsher), self.input_size)


def disorder_loss(milder: torch.Tensor, harsher: torch.Tensor) -> torch.Tensor:
    """Mean amount by which each harsher crop scores above its milder one (0 when every pair is in order)."""
    return torch.relu(harsher - milder).mean()
