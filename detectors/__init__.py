"""Face detectors. Each backend is one module; pick one by ``detector.type``."""

from __future__ import annotations

import logging
from typing import Any

from fiqa_stream.detectors.base import Detector
from fiqa_stream.providers import onnx_providers
from fiqa_stream.registry import resolve

log = logging.getLogger(__name__)

DETECTORS = {
    "yunet": "fiqa_stream.detectors.yunet:YuNetDetector",
    "centerface": "fiqa_stream.detectors.centerface:CenterFaceDetector",
    "scrfd": "fiqa_stream.detectors.scrfd:ScrfdDetector",
}

#: Detectors that run on onnxruntime and take its execution providers.
ONNX_DETECTORS = frozenset({"centerface", "scrfd"})


def build_detector(config: Any, device: str = "cpu") -> Detector:
    """Build the detector named by ``config.type`` from its config model.

    Args:
        config: the detector's config model.
        device: the resolved device (``"cpu"`` or ``"cuda:N"``, see ``fiqa_stream.device``);
            ONNX detectors use onnxruntime's CUDA provider there when it has one.
    """
    detector_class = resolve("detector", config.type, DETECTORS)
    if config.type in ONNX_DETECTORS:
        detector: Detector = detector_class(config, providers=onnx_providers(device, f"detector {config.type}"))
        return detector
    if device != "cpu":
        log.info("detector %s runs on the CPU (it has no GPU backend)", config.type)
    detector = detector_class(config)
    return detector


__all__ = ["DETECTORS", "ONNX_DETECTORS", "Detector", "build_detector"]
