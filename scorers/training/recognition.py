"""An independent face recogniser for training labels: dlib's ResNet, 128-d descriptors.

Training-time only (the ``train`` extra installs PyPI ``dlib-bin`` and
``face-recognition-models``); running the shipped models never needs it. The model
files are public domain: ``shape_predictor_5_face_landmarks.dat`` and
``dlib_face_recognition_resnet_model_v1.dat`` (LFW 99.38 %). The 68-point predictor
in the same package is never used: its training data (iBUG 300-W) forbids commercial
use.

A face is described as dlib's own pipeline does: its 5-point shape predictor finds the
landmarks inside a face rectangle, ``get_face_chip`` cuts the 150-px chip (padding
0.25, what the ResNet was trained on) and the ResNet gives a unit-scale 128-d
descriptor. Two faces are the same person when the Euclidean distance of their
descriptors is below ``SAME_PERSON`` (0.6). About 80-110 ms a face on one core.

The model files are located without importing ``face_recognition_models``: its
``__init__`` imports ``pkg_resources``, which recent setuptools no longer ship.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fiqa_stream.errors import DependencyError, ModelError

#: dlib's decision threshold: the same person below this Euclidean distance.
SAME_PERSON = 0.6
CHIP_SIZE = 150
CHIP_PADDING = 0.25
SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def model_folder() -> Path:
    """The ``models/`` folder of the installed ``face-recognition-models`` package.

    Raises:
        DependencyError: the package is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError.missing("face_recognition_models", "train", "recognition-utility labels")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class Recogniser:
    """dlib's face recogniser over face rectangles of BGR images.

    Raises:
        DependencyError: dlib or face-recognition-models is not installed.
        ModelError: a model file is missing from the package.
    """

    def __init__(self) -> None:
        try:
            import dlib
        except ModuleNotFoundError as e:
            raise DependencyError.missing("dlib", "train", "recognition-utility labels") from e
        folder = model_folder()
        for name in (SHAPE_FILE, RESNET_FILE):
            if not (folder / name).is_file():
                raise ModelError(f"{folder / name} is missing from face-recognition-models")
        self._dlib: Any = dlib
        self._shape = dlib.shape_predictor(str(folder / SHAPE_FILE))
        self._resnet = dlib.face_recognition_model_v1(str(folder / RESNET_FILE))

    def describe(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """The 128-d descriptor of the face in ``box`` (``x1, y1, x2, y2``) of a BGR uint8 image.

        The 5 landmarks are found by dlib in ``image`` itself, so a degraded image is
        aligned as well (or as badly) as the recogniser manages.
        """
        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        shape = self._shape(rgb, self._dlib.rectangle(x1, y1, x2, y2))
        chip = self._dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.asarray(self._resnet.compute_face_descriptor(chip), np.float32)

    def describe_all(self, images: Sequence[np.ndarray], box: Sequence[float]) -> np.ndarray:
        """Descriptors (N, 128) of the face at the same ``box`` in every image."""
        if not images:
            return np.zeros((0, 128), np.float32)
        return np.stack([self.describe(image, box) for image in images])


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (N, M) between descriptors ``a`` (N, 128) and ``b`` (M, 128)."""
    a = np.asarray(a, np.float64).reshape(-1, 128)
    b = np.asarray(b, np.float64).reshape(-1, 128)
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
