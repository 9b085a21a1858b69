"""Face detectors. Each backend is one module; pick one by ``detector.type``."""

from __future__ import annotations

from fiqa_stream.detectors.base import Detector
from fiqa_stream.detectors.config import DetectorConfig
from fiqa_stream.registry import implementations, resolve
from fiqa_stream.runtime import Runtime

#: ``detector.type`` → "module:Class", from the config models' ``implementation``.
DETECTORS = implementations(DetectorConfig)


def build_detector(config: DetectorConfig, runtime: Runtime | None = None) -> Detector:
    """Build the detector named by ``config.type`` from its config model, to run under ``runtime``."""
    detector: Detector = resolve("detector", config.type, DETECTORS)(config, runtime or Runtime())
    return detector


__all__ = ["DETECTORS", "Detector", "build_detector"]
