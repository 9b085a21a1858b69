"""The one place a run's detector and scorer are built: for ``run`` (each pipeline or
worker), for ``index`` (once per worker, shared by its videos) and for ``score``."""

from __future__ import annotations

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.detectors import Detector, build_detector
from fiqa_stream.detectors.config import DetectorConfig
from fiqa_stream.device import resolve_device
from fiqa_stream.runtime import Runtime
from fiqa_stream.scorers import Scorer, build_scorer
from fiqa_stream.scorers.config import ScorerConfig


class Models(ClosedOnExit):
    """A detector and a scorer, closed together."""

    def __init__(self, detector: Detector, scorer: Scorer) -> None:
        self.detector = detector
        self.scorer = scorer

    def close(self) -> None:
        self.detector.close()
        self.scorer.close()


def build_models(detector: DetectorConfig, scorer: ScorerConfig, device: str = "auto", threads: int = 0) -> Models:
    """The configured detector and scorer on ``device``.

    Args:
        detector: the ``detector`` section of a config.
        scorer: the ``scorer`` section of a config.
        device: the ``device`` setting (``auto``, ``cpu``, ``cuda[:N]``).
        threads: native threads per model, for a worker sharing the machine; 0 leaves each
            model its own ``threads`` setting or its library's default.

    Raises:
        ConfigError: ``device`` names a GPU this machine does not have.
        DependencyError, ModelError: a model cannot be loaded.
    """
    runtime = Runtime(resolve_device(device), threads)
    built_detector = build_detector(detector, runtime)
    try:
        built_scorer = build_scorer(scorer, runtime)
    except BaseException:
        built_detector.close()
        raise
    return Models(built_detector, built_scorer)
