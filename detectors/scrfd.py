"""insightface's SCRFD face detector on onnxruntime, from an ONNX file the user supplies.

SCRFD packs (``det_500m.onnx``, ``det_2.5g.onnx``, ``det_10g.onnx``, ...) are not
redistributable inside the project, so the config names the file and nothing is ever
downloaded. The graph's outputs are read by their count, as insightface does: per
feature-map stride one score, one box-distance and (with landmarks) one keypoint-distance
tensor; 6 or 9 outputs mean strides 8/16/32 with 2 anchors per cell, 10 or 15 mean
strides 8..128 with 1 anchor. Frames are fitted into the network input (aspect kept,
padded right and below) and run one at a time: most exported packs flatten the batch
axis into their outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import cv2
import numpy as np

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.detectors.config import ScrfdConfig
from fiqa_stream.errors import DependencyError, ModelError
from fiqa_stream.providers import log_active_providers
from fiqa_stream.runtime import CPU, Runtime
from fiqa_stream.types import Detections

# outputs -> (strides, anchors per cell, with landmarks)
_LAYOUTS: dict[int, tuple[tuple[int, ...], int, bool]] = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}
_MEAN = 127.5
_STD = 128.0


class ScrfdDetector(ClosedOnExit):
    """SCRFD faces (with 5 landmarks when the pack has them) on CPU or any onnxruntime provider.

    Args:
        config: model path, thresholds, input size and onnxruntime threads.
        runtime: the device (onnxruntime's CUDA provider there when it has one) and threads.

    Raises:
        DependencyError: onnxruntime is not installed.
        ModelError: the model file is missing, unreadable or not an SCRFD graph.
    """

    name = "scrfd"

    def __init__(self, config: ScrfdConfig, runtime: Runtime = CPU) -> None:
        self._config = config
        path = config.model.expanduser()
        if not path.is_file():
            raise ModelError(f"{path}: SCRFD model file not found (detector.model must name an insightface "
                             "SCRFD .onnx file; nothing is downloaded)")
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError as error:
            raise DependencyError.missing("onnxruntime", "centerface", "the scrfd detector") from error
        options = ort.SessionOptions()
        options.intra_op_num_threads = runtime.threads_for(config.threads)
        options.log_severity_level = 3
        providers = runtime.providers(f"detector {self.name}")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:
            raise ModelError(f"{path}: cannot load the SCRFD model: {error}".splitlines()[0]) from error
        log_active_providers(self._session, providers, f"detector {self.name}")
        outputs = self._session.get_outputs()
        if len(outputs) not in _LAYOUTS:
            raise ModelError(f"{path}: not an SCRFD model: {len(outputs)} outputs, expected 6, 9, 10 or 15")
        self._strides, self._anchors, self._landmarks = _LAYOUTS[len(outputs)]
        self._output_names = [output.name for output in outputs]
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        height, width = model_input.shape[2:4]
        fixed = isinstance(height, int) and isinstance(width, int)
        self._input_size = (int(width), int(height)) if fixed else (config.input_size, config.input_size)
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Detections:
        in_w, in_h = self._input_size
        height, width = image.shape[:2]
        scale = min(in_w / width, in_h / height)
        new_w, new_h = max(1, int(width * scale)), max(1, int(height * scale))
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
        blob = ((canvas[:, :, ::-1].astype(np.float32) - _MEAN) / _STD).transpose(2, 0, 1)[None]
        outputs = self._session.run(self._output_names, {self._input_name: np.ascontiguousarray(blob)})
        found = self._decode(outputs, in_h, in_w)
        if len(found) == 0:
            return found
        found = found.scaled(1.0 / scale)
        boxes = found.boxes.clip(0, [width, height, width, height]).astype(np.float32)
        return Detections(boxes=boxes, scores=found.scores, landmarks=found.landmarks)

    def _decode(self, outputs: list[np.ndarray], in_h: int, in_w: int) -> Detections:
        levels = len(self._strides)
        scores, boxes, points = [], [], []
        for level, stride in enumerate(self._strides):
            # Batched exports keep a leading batch axis of 1; older ones do not.
            score = _unbatched(outputs[level]).reshape(-1)
            keep = np.nonzero(score >= self._config.confidence)[0]
            centres = self._anchor_centres(in_h // stride, in_w // stride, stride)[keep]
            distance = _unbatched(outputs[level + levels]).reshape(-1, 4)[keep] * stride
            scores.append(score[keep])
            boxes.append(np.concatenate([centres - distance[:, :2], centres + distance[:, 2:]], axis=1))
            if self._landmarks:
                offsets = _unbatched(outputs[level + 2 * levels]).reshape(-1, 5, 2)[keep] * stride
                points.append(centres[:, None, :] + offsets)
        all_scores = np.concatenate(scores).astype(np.float32)
        if all_scores.size == 0:
            return Detections.empty(with_landmarks=self._landmarks)
        all_boxes = np.concatenate(boxes).astype(np.float32)
        xywh = np.column_stack([all_boxes[:, :2], all_boxes[:, 2:] - all_boxes[:, :2]])
        # cv2's stubs ask for sequences of boxes and scores; NMSBoxes takes the arrays themselves.
        config = self._config
        chosen = cv2.dnn.NMSBoxes(xywh, all_scores, config.confidence, config.nms_iou)  # type: ignore[arg-type]
        kept = np.asarray(chosen, np.intp).ravel()
        landmarks = np.concatenate(points).astype(np.float32)[kept] if self._landmarks else None
        return Detections(boxes=all_boxes[kept], scores=all_scores[kept], landmarks=landmarks)

    def _anchor_centres(self, rows: int, cols: int, stride: int) -> np.ndarray:
        key = (rows, cols, stride)
        centres = self._centres.get(key)
        if centres is None:
            ys, xs = np.mgrid[:rows, :cols]
            grid = np.stack([xs, ys], axis=-1).astype(np.float32).reshape(-1, 2) * stride
            centres = self._centres[key] = np.repeat(grid, self._anchors, axis=0)
        return centres

    def close(self) -> None:
        """Drop the cached anchor grids; the session is released with the detector."""
        self._centres.clear()


def _unbatched(output: np.ndarray) -> np.ndarray:
    return output[0] if output.ndim == 3 else output
