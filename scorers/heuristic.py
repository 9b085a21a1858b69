"""Weight-free, face-specific quality from image statistics and the 5 landmarks.

Five components, each in [0, 1], fused by a weighted mean:

* ``sharpness``: the "blur the blur" ratio of Crété-Roffet et al. (2007) on the
  aligned face, times a penalty for sensor noise (Immerkær's Laplacian-difference
  operator, median form) and one for JPEG 8×8 blocking. The blur ratio alone rises
  with noise and blocking (both add high-frequency energy), so the two penalties
  make every one of blur, noise and blocking lower the component.
* ``exposure``: mean brightness near mid-grey, enough contrast, few clipped pixels.
* ``pose``: frontality from the landmarks (yaw, pitch, roll); 0.5 without them.
* ``size``: inter-eye distance over ``full_size_eye_distance``, clipped to 1.
* ``confidence``: the detector's confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.runtime import CPU, Runtime
from fiqa_stream.scorers.align import ARCFACE_TEMPLATE, align_face
from fiqa_stream.scorers.config import HeuristicScorerConfig
from fiqa_stream.types import Face, Quality

COMPONENTS = ("sharpness", "exposure", "pose", "size", "confidence")

# Eyes, nose and mouth of the 112×112 aligned face: skin and features, no background.
CENTRE = (slice(32, 100), slice(24, 88))

# "Blur the blur": a sharp face loses much of its neighbour differences when
# re-blurred with this box filter, a blurred one little. The ratio lost is mapped
# linearly from BLUR_FLOOR (0) to BLUR_FULL (1), then squared: on real faces the
# clean ratio is about 0.5-0.6 and Gaussian blur of sigma 1, 2, 3 px brings it to
# about 0.45, 0.35, 0.28. Squaring makes a slight blur cost more than the JPEG
# artefacts of the source it happens to smooth away.
REBLUR = 9
BLUR_FLOOR = 0.15
BLUR_FULL = 0.65
BLUR_GAMMA = 2.0

# Immerkær's operator: the difference of two Laplacians, blind to planes and
# ramps; for white noise of std s its response has std 6 s. The median of |response|
# ignores the few edge pixels (eyes, mouth) that would read as noise.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_NOISE_MAD = 0.6745 * 6.0
# Grey-level noise std (0-255 scale) under _NOISE_FLOOR is film grain or
# quantisation and costs nothing; beyond it the penalty is 1 / (1 + (excess/_NOISE_SCALE)²),
# 0.5 at an excess of _NOISE_SCALE (about sigma 10 of per-channel noise).
_NOISE_FLOOR = 1.5
_NOISE_SCALE = 6.0

# Blockiness: mean |difference| across the frame's 8-px grid lines over that inside
# the blocks (1 for an uncompressed face, about 1.3 at JPEG quality 50-70, 2.3-2.6 at
# quality 10). Measured on frame pixels because the alignment warp smears the grid.
# Ordinary stream compression up to _BLOCK_FLOOR is free; beyond it the penalty is
# 1 / (1 + (excess/_BLOCK_SCALE)²).
_BLOCK = 8
_BLOCK_FLOOR = 1.2
_BLOCK_SCALE = 0.8
_EPS = 0.1

# The native window is the landmarks' hull grown by this much of the eye distance,
# or the middle of the box; at most _WINDOW_MAX px a side keeps big faces cheap.
_WINDOW_GROW = 0.25
_WINDOW_BOX = 0.25
_WINDOW_MAX = 128

# Exposure: mean grey in [MID - MID_FLAT, MID + MID_FLAT] is fine and falls
# linearly to 0 over MID_RAMP beyond; contrast (std of grey) saturates at STD_FULL;
# every clipped (<= 5 or >= 250) pixel counts against it.
MID = 128.0
MID_FLAT = 50.0
MID_RAMP = 70.0
STD_FULL = 30.0

# Pose: Gaussian tolerances of the frontality terms. Yaw is the nose's offset from the
# eye/mouth midline over half the eye distance (about 0.8 tan(yaw), so 0.4 is ~25°);
# pitch is the shift of the nose's height between eye and mouth lines from the
# template's (about 0.5 tan(pitch)); roll is the eye line's angle.
_YAW_TOL = 0.4
_PITCH_TOL = 0.2
_ROLL_TOL = math.radians(30.0)
_PITCH_REF = float(
    (ARCFACE_TEMPLATE[2, 1] - ARCFACE_TEMPLATE[:2, 1].mean())
    / (ARCFACE_TEMPLATE[3:, 1].mean() - ARCFACE_TEMPLATE[:2, 1].mean())
)
_POSE_UNKNOWN = 0.5

# Without landmarks the eye distance is taken as this fraction of the box width.
_EYES_PER_BOX = 0.4


class HeuristicScorer(ClosedOnExit):
    """Quality from sharpness, exposure, pose, size and detector confidence.

    Args:
        config: the weights and the size at which a face counts as full size.
        runtime: unused: the components are computed with OpenCV and numpy on the CPU.

    Raises:
        ValueError: when every weight is zero.
    """

    model = "heuristic-1"

    def __init__(self, config: HeuristicScorerConfig, runtime: Runtime = CPU) -> None:
        weights = np.array([getattr(config.weights, name) for name in COMPONENTS], np.float64)
        total = float(weights.sum())
        if total <= 0.0:
            raise ValueError("heuristic scorer weights must not all be zero")
        self._weights = weights / total
        self._full_eyes = config.full_size_eye_distance

    def score(self, faces: Sequence[Face], aligned: np.ndarray | None = None) -> list[Quality]:
        """Score a batch of faces.

        Args:
            faces: faces with their frames, boxes, confidences and landmarks.
            aligned: the faces already warped by ``align_face`` at ``TEMPLATE_SIZE``
                (N×112×112×3 uint8 BGR), when the caller has them; else they are aligned here.

        Returns:
            One ``Quality`` per face with all five components.
        """
        if not faces:
            return []
        if aligned is None:
            greys = np.stack([_aligned_grey(face) for face in faces])
        else:
            n, side = aligned.shape[:2]
            stacked = np.ascontiguousarray(aligned).reshape(n * side, side, 3)
            greys = cv2.cvtColor(stacked, cv2.COLOR_BGR2GRAY).reshape(n, side, side)
        table = np.empty((len(faces), len(COMPONENTS)), np.float64)
        table[:, 0] = _sharpness(greys, faces)
        table[:, 1] = [_exposure(grey) for grey in greys]
        table[:, 2], table[:, 3] = _geometry(faces, self._full_eyes)
        table[:, 4] = [face.confidence for face in faces]
        np.clip(table, 0.0, 1.0, out=table)
        fused = np.clip(table @ self._weights, 0.0, 1.0)
        return [
            Quality(float(fused[i]), dict(zip(COMPONENTS, map(float, table[i]), strict=True)))
            for i in range(len(faces))
        ]

    def close(self) -> None:
        """Nothing to release; present for the ``Scorer`` protocol."""


def _aligned_grey(face: Face) -> np.ndarray:
    return cv2.cvtColor(align_face(face.image, face.landmarks, face.box), cv2.COLOR_BGR2GRAY)


def _sharpness(greys: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """The sharpness component of each face from its aligned grey face (N×112×112 uint8)."""
    n, side = greys.shape[:2]
    # One filter call over the faces stacked into a column: every pixel the centre reads
    # (with the filters' reach) lies inside its own face, so the seams change nothing.
    smooth = cv2.medianBlur(np.ascontiguousarray(greys).reshape(n * side, side), 3).astype(np.float32)
    region = smooth.reshape(n, side, side)[:, CENTRE[0], CENTRE[1]]
    ratio = np.ones(n)
    for ksize, axis in (((REBLUR, 1), 2), ((1, REBLUR), 1)):
        reblurred = cv2.blur(smooth, ksize).reshape(n, side, side)[:, CENTRE[0], CENTRE[1]]
        detail = np.abs(np.diff(region, axis=axis))
        kept = np.abs(np.diff(reblurred, axis=axis))
        lost = np.maximum(detail - kept, 0.0).sum(axis=(1, 2))
        # The blurrier direction decides, as in Crété-Roffet et al.
        ratio = np.minimum(ratio, lost / np.maximum(detail.sum(axis=(1, 2)), 1e-6))
    focus = np.clip((ratio - BLUR_FLOOR) / (BLUR_FULL - BLUR_FLOOR), 0.0, 1.0) ** BLUR_GAMMA
    return focus * np.array([_penalties(face) for face in faces])


def _penalties(face: Face) -> float:
    """The sensor-noise penalty times the JPEG-blocking penalty, read in frame pixels."""
    window, x0, y0 = _native_window(face)
    sigma = _noise_sigma(window)
    noise = 1.0 / (1.0 + (max(sigma - _NOISE_FLOOR, 0.0) / _NOISE_SCALE) ** 2)
    excess = max(_blockiness(window, x0, y0) - _BLOCK_FLOOR, 0.0)
    blocks = 1.0 / (1.0 + (excess / _BLOCK_SCALE) ** 2)
    return noise * blocks


def _native_window(face: Face) -> tuple[np.ndarray, int, int]:
    """The face's middle in frame pixels (grey float32) and its top-left corner."""
    height, width = face.image.shape[:2]
    if face.landmarks is None:
        x1, y1, x2, y2 = (float(v) for v in face.box)
        gx, gy = -(x2 - x1) * _WINDOW_BOX, -(y2 - y1) * _WINDOW_BOX
    else:
        points = np.asarray(face.landmarks, np.float32)
        x1, y1 = (float(v) for v in points.min(axis=0))
        x2, y2 = (float(v) for v in points.max(axis=0))
        gx = gy = _WINDOW_GROW * float(np.linalg.norm(points[1] - points[0]))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half_w = min((x2 - x1) / 2.0 + gx, _WINDOW_MAX / 2.0)
    half_h = min((y2 - y1) / 2.0 + gy, _WINDOW_MAX / 2.0)
    left, right = max(int(cx - half_w), 0), min(int(math.ceil(cx + half_w)), width)
    top, bottom = max(int(cy - half_h), 0), min(int(math.ceil(cy + half_h)), height)
    if right - left < 3 or bottom - top < 3:
        return np.zeros((0, 0), np.float32), left, top
    patch = cv2.cvtColor(face.image[top:bottom, left:right], cv2.COLOR_BGR2GRAY)
    return patch.astype(np.float32), left, top


def _noise_sigma(window: np.ndarray) -> float:
    if window.shape[0] < 3 or window.shape[1] < 3:
        return 0.0
    response = cv2.filter2D(window, -1, _NOISE_KERNEL)[1:-1, 1:-1]
    # The window holds whole grey levels and the kernel whole weights, so |response| is a
    # whole number below 16 × 256: its median from a histogram, exactly np.median's.
    counts = np.cumsum(np.bincount(np.abs(response).astype(np.int32).ravel()))
    n = response.size
    middle = np.searchsorted(counts, ((n + 1) // 2, n // 2 + 1))
    return float(middle.mean()) / _NOISE_MAD


def _blockiness(window: np.ndarray, x0: int, y0: int) -> float:
    ratios = []
    for axis, origin in ((1, x0), (0, y0)):
        if window.shape[axis] < 2 * _BLOCK + 1:
            continue
        steps = np.abs(np.diff(window, axis=axis)).mean(axis=1 - axis)
        # Step k lies between frame pixels origin+k and origin+k+1: a grid line when
        # the latter starts a block.
        on_grid = (np.arange(steps.size) + origin + 1) % _BLOCK == 0
        ratios.append((steps[on_grid].mean() + _EPS) / (steps[~on_grid].mean() + _EPS))
    return float(np.mean(ratios)) if ratios else 1.0


def _exposure(grey: np.ndarray) -> float:
    region = grey[CENTRE]
    mean, std = cv2.meanStdDev(region)
    m, s = float(mean[0, 0]), float(std[0, 0])
    level = 1.0 - max(abs(m - MID) - MID_FLAT, 0.0) / MID_RAMP
    contrast = min(s / STD_FULL, 1.0)
    clipped = float(np.count_nonzero((region <= 5) | (region >= 250))) / region.size
    return max(level, 0.0) * contrast * (1.0 - clipped)


def _geometry(faces: Sequence[Face], full_eyes: float) -> tuple[np.ndarray, np.ndarray]:
    """Pose and size of every face, vectorised over those with landmarks."""
    n = len(faces)
    pose = np.full(n, _POSE_UNKNOWN)
    eyes = np.array(
        [_EYES_PER_BOX * float(face.box[2] - face.box[0]) for face in faces], np.float64
    )
    marked = [i for i, face in enumerate(faces) if face.landmarks is not None]
    if marked:
        points = np.stack([np.asarray(faces[i].landmarks, np.float64) for i in marked])
        eye_vec = points[:, 1] - points[:, 0]
        distance = np.maximum(np.hypot(eye_vec[:, 0], eye_vec[:, 1]), 1e-6)
        roll = np.arctan2(eye_vec[:, 1], eye_vec[:, 0])
        # Undo the roll about the eye centre so yaw and pitch read off plain x and y.
        cos, sin = np.cos(roll)[:, None], np.sin(roll)[:, None]
        shifted = points - (points[:, 0] + points[:, 1])[:, None] / 2.0
        x = cos * shifted[..., 0] + sin * shifted[..., 1]
        y = -sin * shifted[..., 0] + cos * shifted[..., 1]
        mouth_x, mouth_y = (x[:, 3] + x[:, 4]) / 2.0, (y[:, 3] + y[:, 4]) / 2.0
        yaw = (x[:, 2] - mouth_x / 2.0) / (distance / 2.0)
        depth = np.where(np.abs(mouth_y) > 1e-6, mouth_y, 1e-6)
        pitch = y[:, 2] / depth - _PITCH_REF
        pose[marked] = np.exp(
            -0.5 * ((yaw / _YAW_TOL) ** 2 + (pitch / _PITCH_TOL) ** 2 + (roll / _ROLL_TOL) ** 2)
        )
        eyes[marked] = distance
    size = np.minimum(eyes / full_eyes, 1.0)
    return pose, size
