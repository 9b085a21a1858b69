"""Face detectors. Each backend is one module; pick one by ``detector.type``."""

from __future__ import annotations

from typing import Any

from fiqa_stream.detectors.base import Detector
from fiqa_stream.registry import resolve

DETECTORS = {
    "yunet": "fiqa_stream.detectors.yunet:YuNetDetector",
    "centerface": "fiqa_stream.detectors.centerface:CenterFaceDetector",
}


def build_detector(config: Any) -> Detector:
    """Build the detector named by ``config.type`` from its config model."""
    detector: Detector = resolve("detector", config.type, DETECTORS)(config)
    return detector


__all__ = ["DETECTORS", "Detector", "build_detector"]
