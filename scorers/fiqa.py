"""The learned scorer: a FIQA model on onnxruntime, fused with the weight-free components.

Each face is aligned exactly as the training crops were (``align_face`` from its five
landmarks, or from its box without them, to the model's input side) and normalised
by ``preprocess.crops_to_array``; the crops of a batch go through the model in
chunks of ``batch_size``. The weight-free components come from
``heuristic.HeuristicScorer``; the fused score is their weighted arithmetic mean with
the model's score (``FiqaScorerConfig.weights`` when set, else the weights fitted with
the shipped model, else ``FiqaWeights``' defaults; normalised to sum to 1), and every
component is reported in ``Quality.components``, the model's as ``model``. The
scorer's ``model`` is the shipped version (``fiqa-student-utility-9``, or
``fiqa-student-utility-9+int8`` where its 8-bit integer model runs: by default on the
CPU, see ``FiqaScorerConfig.precision``), or the stem of a model file of the user's own
(``model_file.ModelFile``). onnxruntime, not torch, runs the model, so a CPU install
needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.errors import DependencyError, ModelError
from fiqa_stream.providers import log_active_providers
from fiqa_stream.runtime import CPU, Runtime
from fiqa_stream.scorers.align import TEMPLATE_SIZE, align_face
from fiqa_stream.scorers.config import FiqaScorerConfig, FiqaWeights, HeuristicScorerConfig
from fiqa_stream.scorers.heuristic import COMPONENTS, HeuristicScorer
from fiqa_stream.scorers.model_file import input_side, scorer_model
from fiqa_stream.scorers.models.preprocess import crops_to_array
from fiqa_stream.scorers.weights import ShippedModel
from fiqa_stream.types import Face, Quality

#: The fused components, in the order of the weights: the model's score, then the heuristic's.
FUSED = ("model", *COMPONENTS)


def aligned_crops(faces: Sequence[Face], size: int) -> np.ndarray:
    """The faces aligned as in training: N×S×S×3 uint8 BGR (N ≥ 1).

    ``crops_to_array`` of these is what the model is fed; the CUDA preprocessor
    (``prep_cuda``) is held to it by tests/scorers/test_prep.py.
    """
    return np.stack([align_face(f.image, f.landmarks, f.box, size) for f in faces])


def runs_int8(config: FiqaScorerConfig, device: str) -> bool:
    """Whether the scorer of ``config`` on ``device`` runs its model's 8-bit integer version."""
    if config.precision != "auto":
        return config.precision == "int8"
    return device == "cpu" and scorer_model(config.model).int8_onnx_sha256 is not None


class FiqaScorer(ClosedOnExit):
    """Quality from a learned model and the weight-free components.

    Args:
        config: which model (shipped, or an ONNX file), the fusion weights, batching and threads.
        runtime: the device (onnxruntime's CUDA provider there when it has one) and threads.

    Raises:
        ValueError: every weight is zero.
        DependencyError: onnxruntime is not installed.
        ModelError: the model file is missing, corrupt or will not load.
    """

    def __init__(self, config: FiqaScorerConfig, runtime: Runtime = CPU) -> None:
        spec = scorer_model(config.model)
        chosen = config.weights
        if chosen is None:
            fitted = spec.fusion_weights()
            chosen = FiqaWeights() if fitted is None else FiqaWeights(**fitted)
        #: The fusion weights in use (the config's, else those shipped with the model, else the defaults).
        self.fusion = chosen
        weights = np.array([getattr(chosen, name) for name in FUSED], np.float64)
        total = float(weights.sum())
        if total <= 0.0:
            raise ValueError("fiqa scorer weights must not all be zero")
        self._weights = weights / total
        int8 = runs_int8(config, runtime.device)
        #: The model events name: the shipped version (with ``+int8`` when its integer model runs) or the file's stem.
        self.model = f"{spec.version}+int8" if int8 else spec.version
        self._batch = config.batch_size
        # Only the heuristic's components are used, never its own fused score: its weights are
        # irrelevant here (and a fitted fusion may give every weight-free component 0).
        self._heuristic = HeuristicScorer(HeuristicScorerConfig(full_size_eye_distance=config.full_size_eye_distance))
        try:
            import onnxruntime
        except ModuleNotFoundError as e:
            raise DependencyError(
                "the fiqa scorer needs onnxruntime: pip install onnxruntime (a core dependency of fiqa-stream)"
            ) from e
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = runtime.threads_for(config.threads)
        # One inference at a time per scorer: inter-op parallelism would only compete for the cores.
        options.inter_op_num_threads = 1
        # Spinning worker threads would starve the decode and detect threads between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        path = spec.int8_onnx if int8 and isinstance(spec, ShippedModel) else spec.onnx
        providers = runtime.providers("scorer fiqa")
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own untyped errors for bad graphs
            raise ModelError(f"{path}: onnxruntime cannot load the model: {e}") from e
        log_active_providers(self._session, providers, "scorer fiqa")
        #: The side of the aligned crops the model takes (a model file's is read from its graph).
        self.input_size = spec.input_size if isinstance(spec, ShippedModel) else input_side(self._session, path)
        self._input = self._session.get_inputs()[0].name

    def crops(self, faces: Sequence[Face]) -> np.ndarray:
        """The faces aligned as in training: N×S×S×3 uint8 BGR at the model's input side."""
        return aligned_crops(faces, self.input_size)

    def model_scores(self, crops: np.ndarray) -> np.ndarray:
        """The model's scores in [0, 1] of aligned BGR crops, run in chunks of ``batch_size``."""
        scores = []
        for start in range(0, len(crops), self._batch):
            batch = crops_to_array(crops[start : start + self._batch])
            scores.append(self._session.run(None, {self._input: batch})[0].reshape(-1))
        return np.clip(np.concatenate(scores), 0.0, 1.0) if scores else np.zeros(0, np.float32)

    def score(self, faces: Sequence[Face]) -> list[Quality]:
        """Score a batch of faces.

        Returns:
            One ``Quality`` per face: the fused score and the components ``model``,
            ``sharpness``, ``exposure``, ``pose``, ``size`` and ``confidence``.
        """
        if not faces:
            return []
        crops = self.crops(faces)
        learned = self.model_scores(crops)
        # The weight-free components read the same ArcFace crop when the model's side is the template's.
        shared = crops if self.input_size == TEMPLATE_SIZE else None
        components = [
            {"model": float(value), **quality.components}
            for value, quality in zip(learned, self._heuristic.score(faces, shared), strict=True)
        ]
        table = np.array([[c[name] for name in FUSED] for c in components], np.float64)
        fused = np.clip(table @ self._weights, 0.0, 1.0)
        return [Quality(float(f), c) for f, c in zip(fused, components, strict=True)]

    def close(self) -> None:
        """Nothing to release beyond what garbage collection frees; present for the ``Scorer`` protocol."""
