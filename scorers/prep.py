"""Batched face preprocessing on the GPU: the host side of ``prep_cuda``, and its function.

The CUDA path computes, for N faces of one or several frames, what the CPU pipeline
computes (``fiqa.aligned_crops`` then ``crops_to_array``, and the
heuristic scorer's components); tests/scorers/test_prep.py holds it to that:

* the similarity from the 5 landmarks (or the box when there are none) of
  ``fiqa_stream.scorers.align``, as an inverse map from output to frame pixels;
* bilinear sampling into S×S with the frame's edge pixels repeated outside it
  (``cv2.warpAffine`` with ``INTER_LINEAR`` and ``BORDER_REPLICATE``, in exact
  floating point where OpenCV uses 1/32-pixel fixed point and rounds to uint8);
* BGR to RGB, scaling to [0, 1] and normalisation by a per-channel mean and std,
  into NCHW (or channels-last) layout;
* two quality components per face, read off the 112×112 aligned grey face as in
  ``fiqa_stream.scorers.heuristic``: ``exposure`` exactly as there, and
  ``sharpness`` as its focus term alone (the blur-the-blur ratio). The heuristic
  scorer also multiplies sharpness by a sensor-noise and a JPEG-blocking penalty,
  read from a variable-size window of frame pixels with a median; those need a
  per-face sort and stay on the CPU scorer. Where both penalties are 1 (noise and
  blocking below their floors) the two sharpness values agree.

Distinct frames are packed once into one flat uint8 buffer; faces point into it
by frame index, so a frame with many faces is read (and uploaded) once. This module
needs no CuPy, so the layout and the kernels' constants are testable without a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fiqa_stream.scorers import heuristic
from fiqa_stream.scorers.align import TEMPLATE_SIZE, similarity_from_box, similarity_from_landmarks
from fiqa_stream.scorers.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from fiqa_stream.types import Face

COMPONENTS = ("sharpness", "exposure")

#: The aligned grey face the components are read from, and its region (rows, cols).
GREY_SIZE = TEMPLATE_SIZE
CENTRE_ROWS = (heuristic.CENTRE[0].start, heuristic.CENTRE[0].stop)
CENTRE_COLS = (heuristic.CENTRE[1].start, heuristic.CENTRE[1].stop)
REBLUR = heuristic.REBLUR

#: Raw per-face statistics of the components kernel: blur ratio, grey mean, grey std, clipped fraction.
STATS = 4


@dataclass(frozen=True)
class FaceLayout:
    """Where each face's pixels are: distinct frames packed into one flat buffer.

    Attributes:
        frames: the distinct H×W×3 uint8 BGR frames, in first-seen order.
        offsets: (F,) int64 start of each frame in the packed buffer, in bytes.
        shapes: (F, 2) int32 height and width of each frame.
        face_frames: (N,) int32 index into ``frames`` of each face.
        model_maps: (N, 6) float32 inverse maps, output pixel (x, y) of the S×S input
            to frame pixel: ``[a, b, c, d, e, f]`` with ``sx = a x + b y + c``, ``sy = d x + e y + f``.
        grey_maps: (N, 6) float32 inverse maps of the 112×112 grey face (components).
        nbytes: size of the packed buffer.
    """

    frames: list[np.ndarray]
    offsets: np.ndarray
    shapes: np.ndarray
    face_frames: np.ndarray
    model_maps: np.ndarray
    grey_maps: np.ndarray
    nbytes: int

    def pack_into(self, buffer: np.ndarray) -> None:
        """Copy the frames into ``buffer`` (flat uint8 of at least ``nbytes``) at their offsets."""
        for frame, offset in zip(self.frames, self.offsets, strict=True):
            buffer[int(offset) : int(offset) + frame.size] = frame.reshape(-1)


def layout_faces(faces: Sequence[Face], size: int) -> FaceLayout:
    """The packing and sampling maps of a batch of faces.

    Args:
        faces: faces with their frames (H×W×3 uint8, C-contiguous or not), boxes and landmarks.
        size: side S of the model's square input.

    Raises:
        ValueError: a frame is not H×W×3 uint8.
    """
    index: dict[int, int] = {}
    frames: list[np.ndarray] = []
    face_frames = np.empty(len(faces), np.int32)
    for i, face in enumerate(faces):
        key = id(face.image)
        if key not in index:
            image = face.image
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"frames must be H×W×3 uint8 BGR, got {image.shape} {image.dtype}")
            index[key] = len(frames)
            frames.append(np.ascontiguousarray(image))
        face_frames[i] = index[key]
    sizes = np.array([frame.size for frame in frames], np.int64)
    offsets = np.cumsum(sizes) - sizes
    shapes = np.array([frame.shape[:2] for frame in frames], np.int32).reshape(-1, 2)
    return FaceLayout(
        frames=frames,
        offsets=offsets,
        shapes=shapes,
        face_frames=face_frames,
        model_maps=inverse_maps(faces, size),
        grey_maps=inverse_maps(faces, GREY_SIZE),
        nbytes=int(sizes.sum()),
    )


def inverse_maps(faces: Sequence[Face], size: int) -> np.ndarray:
    """(N, 6) float32 maps from aligned S×S pixels back to frame pixels (see ``FaceLayout``).

    The forward similarity is ``align``'s own float32 matrix, inverted in float64 as
    ``cv2.warpAffine`` does.
    """
    forward = np.empty((len(faces), 2, 3), np.float32)
    marked = [i for i, face in enumerate(faces) if face.landmarks is not None]
    if marked:
        points = np.stack([np.asarray(faces[i].landmarks, np.float32) for i in marked])
        forward[marked] = similarity_from_landmarks(points, size)
    for i, face in enumerate(faces):
        if face.landmarks is None:
            forward[i] = similarity_from_box(face.box, size)
    matrix = forward.astype(np.float64)
    linear, shift = matrix[:, :, :2], matrix[:, :, 2:]
    inverse = np.linalg.inv(linear)
    return np.concatenate([inverse, -inverse @ shift], axis=2).reshape(-1, 6).astype(np.float32)


def channel_affine(
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> tuple[np.ndarray, np.ndarray]:
    """Per-RGB-channel ``(scale, bias)`` with ``value = pixel * scale + bias`` for 0..255 pixels."""
    m, s = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    return (1.0 / (255.0 * s)).astype(np.float32), (-m / s).astype(np.float32)


def finish_components(stats: Any, xp: Any = np) -> tuple[Any, Any]:
    """Sharpness (focus term) and exposure in [0, 1] from the raw (N, 4) statistics.

    Args:
        stats: (N, 4) blur ratio, grey mean, grey std and clipped fraction.
        xp: the array module of ``stats`` (numpy or cupy).
    """
    ratio, mean, std, clipped = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    focus = xp.clip((ratio - heuristic.BLUR_FLOOR) / (heuristic.BLUR_FULL - heuristic.BLUR_FLOOR), 0.0, 1.0)
    sharpness = focus**heuristic.BLUR_GAMMA
    level = 1.0 - xp.maximum(xp.abs(mean - heuristic.MID) - heuristic.MID_FLAT, 0.0) / heuristic.MID_RAMP
    contrast = xp.minimum(std / heuristic.STD_FULL, 1.0)
    exposure = xp.clip(xp.maximum(level, 0.0) * contrast * (1.0 - clipped), 0.0, 1.0)
    return sharpness, exposure


@dataclass(frozen=True)
class Prepared:
    """A preprocessed batch and its components.

    Attributes:
        batch: N×3×S×S model input, RGB, normalised (a torch float16 CUDA tensor;
            channels-last memory when asked).
        sharpness: (N,) focus term of the sharpness component, in [0, 1].
        exposure: (N,) exposure component, in [0, 1].
    """

    batch: Any
    sharpness: Any
    exposure: Any
