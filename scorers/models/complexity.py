"""Parameters and multiply-accumulates of the registered models, counted by torch itself."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from fiqa_stream.scorers.models import build_model, model_spec


class Complexity(NamedTuple):
    """What one model costs per image."""

    params: int
    gmacs: float
    input_size: int


def count(model: torch.nn.Module, input_size: int) -> Complexity:
    """Parameters of ``model`` and its GMACs on one input_size×input_size RGB image.

    MACs are FlopCounterMode's FLOPs over 2: it counts convolutions, linear layers and
    matrix products (two FLOPs per multiply-accumulate) and leaves out element-wise
    work (activations, norms, pooling), the convention of the challenge's counters.
    """
    params = sum(p.numel() for p in model.parameters())
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, input_size, input_size))
    model.train(was_training)
    return Complexity(params, counter.get_total_flops() / 2e9, input_size)


def complexity(name: str, input_size: int | None = None) -> Complexity:
    """Parameters and GMACs per image of the registered model ``name``.

    Args:
        name: a key of ``MODELS``.
        input_size: the square input side; the model's registered size by default.

    Raises:
        ConfigError: ``name`` is not registered.
    """
    size = model_spec(name).input_size if input_size is None else input_size
    return count(build_model(name), size)
