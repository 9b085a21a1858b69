"""A constant-velocity Kalman filter on boxes (centre x, centre y, aspect ratio, height).

The state is [cx, cy, a, h, vcx, vcy, va, vh], as in SORT/ByteTrack; process and
measurement noise scale with the box height so small and large faces behave alike.
"""

from __future__ import annotations

import numpy as np

_POSITION_WEIGHT = 1.0 / 20
_VELOCITY_WEIGHT = 1.0 / 160
# Noise scales with the height; a floor keeps the covariance invertible for degenerate boxes.
_MIN_HEIGHT = 1.0

_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)
_OBSERVATION = np.eye(4, 8)


def box_to_xyah(box: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2] to [centre x, centre y, width / height, height] (float64)."""
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    return np.array(
        [box[0] + width / 2, box[1] + height / 2, width / max(height, 1e-6), height], np.float64
    )


def xyah_to_box(xyah: np.ndarray) -> np.ndarray:
    """[centre x, centre y, width / height, height] to [x1, y1, x2, y2] (float32)."""
    cx, cy, aspect, height = xyah[:4]
    width = aspect * height
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], np.float32)


class BoxKalman:
    """Tracks one box: ``predict`` once per frame, ``update`` when the box is seen.

    Attributes:
        mean: (8,) state [cx, cy, a, h, vcx, vcy, va, vh].
        covariance: (8, 8) state covariance.
    """

    def __init__(self, box: np.ndarray) -> None:
        measurement = box_to_xyah(box)
        h = max(measurement[3], _MIN_HEIGHT)
        self.mean = np.concatenate([measurement, np.zeros(4)])
        pos, vel = 2 * _POSITION_WEIGHT * h, 10 * _VELOCITY_WEIGHT * h
        self.covariance = np.diag(np.square([pos, pos, 1e-2, pos, vel, vel, 1e-5, vel]))

    @property
    def box(self) -> np.ndarray:
        """The current estimate as [x1, y1, x2, y2] float32."""
        return xyah_to_box(self.mean)

    def predict(self, hold_size: bool = False) -> None:
        """Advance one frame.

        Args:
            hold_size: zero the height velocity first; used for unseen tracks so their box
                neither collapses nor balloons while they coast (as ByteTrack does).
        """
        if hold_size:
            self.mean[7] = 0.0
        h = max(self.mean[3], _MIN_HEIGHT)
        pos, vel = _POSITION_WEIGHT * h, _VELOCITY_WEIGHT * h
        self.mean = _MOTION @ self.mean
        self.covariance = _MOTION @ self.covariance @ _MOTION.T + np.diag(
            np.square([pos, pos, 1e-2, pos, vel, vel, 1e-5, vel])
        )

    def update(self, box: np.ndarray) -> None:
        """Correct the state with an observed box [x1, y1, x2, y2]."""
        h = max(self.mean[3], _MIN_HEIGHT)
        pos = _POSITION_WEIGHT * h
        noise = np.diag(np.square([pos, pos, 1e-1, pos]))
        projected_cov = _OBSERVATION @ self.covariance @ _OBSERVATION.T + noise
        gain = np.linalg.solve(projected_cov, _OBSERVATION @ self.covariance).T
        innovation = box_to_xyah(box) - _OBSERVATION @ self.mean
        self.mean = self.mean + gain @ innovation
        self.covariance = self.covariance - gain @ projected_cov @ gain.T
