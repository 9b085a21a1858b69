"""Face-image-quality scorers. Each is one module; pick one by ``scorer.type``."""

from __future__ import annotations

from fiqa_stream.registry import implementations, resolve
from fiqa_stream.runtime import Runtime
from fiqa_stream.scorers.base import Scorer
from fiqa_stream.scorers.config import ScorerConfig

#: ``scorer.type`` → "module:Class", from the config models' ``implementation``.
SCORERS = implementations(ScorerConfig)


def build_scorer(config: ScorerConfig, runtime: Runtime | None = None) -> Scorer:
    """Build the scorer named by ``config.type`` from its config model, to run under ``runtime``."""
    scorer: Scorer = resolve("scorer", config.type, SCORERS)(config, runtime or Runtime())
    return scorer


__all__ = ["SCORERS", "Scorer", "build_scorer"]
