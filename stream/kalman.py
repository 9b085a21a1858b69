"""A constant-velocity Kalman filter on boxes (centre x, centre y, aspect ratio, height).

The state is [cx, cy, a, h, vcx, vcy, va, vh], as in SORT/ByteTrack; process and
measurement noise scale with the box height so small and large faces behave alike.
"""

from __future__ import annotations

import numpy as np

_POSITION_WEIGHT = 1.0 / 20
_VELOCITY_WEIGHT = 1.0 / 160

_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)
_OBSERVATION = np.eye(4, 8)


def box_to_xyah(box: np.ndarray) -> np.ndarray:
    width, height = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + width / 2, box[1] + height / 2, width / max(height, 1e-6), height], np.float64)


def xyah_to_box(xyah: np.ndarray) -> np.ndarray:
    cx, cy, aspect, height = xyah[:4]
    width = aspect * height
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], np.float32)


class BoxKalman:
    """Tracks one box; ``predict`` once per frame, ``update`` when it is seen."""

    def __init__(self, box: np.ndarray) -> None:
        measurement = box_to_xyah(box)
        h = measurement[3]
        self.mean = np.concatenate([measurement, np.zeros(4)])
        std = [2 * _POSITION_WEIGHT * h, 2 * _POSITION_WEIGHT * h, 1e-2, 2 * _POSITION_WEIGHT * h,
               10 * _VELOCITY_WEIGHT * h, 10 * _VELOCITY_WEIGHT * h, 1e-5, 10 * _VELOCITY_WEIGHT * h]
        self.covariance = np.diag(np.square(std))

    @property
    def box(self) -> np.ndarray:
        return xyah_to_box(self.mean)

    def predict(self) -> None:
        h = self.mean[3]
        std = [_POSITION_WEIGHT * h, _POSITION_WEIGHT * h, 1e-2, _POSITION_WEIGHT * h,
               _VELOCITY_WEIGHT * h, _VELOCITY_WEIGHT * h, 1e-5, _VELOCITY_WEIGHT * h]
        self.mean = _MOTION @ self.mean
        self.covariance = _MOTION @ self.covariance @ _MOTION.T + np.diag(np.square(std))

    def update(self, box: np.ndarray) -> None:
        h = self.mean[3]
        noise = np.diag(np.square([_POSITION_WEIGHT * h, _POSITION_WEIGHT * h, 1e-1, _POSITION_WEIGHT * h]))
        projected_cov = _OBSERVATION @ self.covariance @ _OBSERVATION.T + noise
        gain = np.linalg.solve(projected_cov, _OBSERVATION @ self.covariance).T
        innovation = box_to_xyah(box) - _OBSERVATION @ self.mean
        self.mean = self.mean + gain @ innovation
        self.covariance = self.covariance - gain @ projected_cov @ gain.T
