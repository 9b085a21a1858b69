"""Face-image-quality scorers. Each is one module; pick one by ``scorer.type``."""

from __future__ import annotations

from typing import Any

from fiqa_stream.registry import resolve
from fiqa_stream.scorers.base import Scorer

SCORERS = {
    "heuristic": "fiqa_stream.scorers.heuristic:HeuristicScorer",
    "fiqa": "fiqa_stream.scorers.fiqa:FiqaScorer",
}


def build_scorer(config: Any) -> Scorer:
    """Build the scorer named by ``config.type`` from its config model."""
    scorer: Scorer = resolve("scorer", config.type, SCORERS)(config)
    return scorer


__all__ = ["SCORERS", "Scorer", "build_scorer"]
