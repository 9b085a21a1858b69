"""Face-image-quality scorers. Each is one module; pick one by ``scorer.type``."""

from __future__ import annotations

from typing import Any

from fiqa_stream.providers import onnx_providers
from fiqa_stream.registry import resolve
from fiqa_stream.scorers.base import Scorer

SCORERS = {
    "heuristic": "fiqa_stream.scorers.heuristic:HeuristicScorer",
    "fiqa": "fiqa_stream.scorers.fiqa:FiqaScorer",
}

#: Scorers that run on onnxruntime and take its execution providers.
ONNX_SCORERS = frozenset({"fiqa"})


def build_scorer(config: Any, device: str = "cpu") -> Scorer:
    """Build the scorer named by ``config.type`` from its config model.

    Args:
        config: the scorer's config model.
        device: a resolved device (``"cpu"`` or ``"cuda:N"``) for scorers that run on onnxruntime.
    """
    scorer_class = resolve("scorer", config.type, SCORERS)
    if config.type in ONNX_SCORERS:
        scorer: Scorer = scorer_class(config, providers=onnx_providers(device, f"scorer {config.type}"))
    else:
        scorer = scorer_class(config)
    return scorer


__all__ = ["SCORERS", "Scorer", "build_scorer"]
