"""What a face looks like, cheaply enough to compare every detection with every track.

The descriptor of a face box is the box's content shrunk to a 16×16 grey patch, less
its mean, scaled to unit length; two descriptors compare by their dot product (the
normalised cross-correlation of the patches, in [-1, 1]). Shrinking keeps the layout
of hair, eyes, mouth and face outline and drops what changes from frame to frame (fine
texture, blur, noise); removing the mean and the scale ignores brightness and contrast.
Measured with YuNet boxes on Debian opencv-doc's Megamind.avi: the same face in two
consecutive frames correlates 0.80-1.00 (median 0.98), the two people who meet across
its cut at frame 200 correlate 0.29. A descriptor costs about 20 µs.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE = 16
_MIN_SIDE = 4


def describe(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Descriptors of the face boxes of one image.

    Args:
        image: H×W×3 uint8 BGR.
        boxes: (N, 4) [x1, y1, x2, y2]; parts outside the image are ignored.

    Returns:
        (N, 256) float32 unit vectors; a zero row for a box with less than 4 px of
        image inside it or a flat patch (it matches nothing and blocks nothing).
    """
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), SIZE * SIZE), np.float32)
    for row, box in enumerate(np.asarray(boxes, np.float64)):
        x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
        x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
        if x2 - x1 < _MIN_SIDE or y2 - y1 < _MIN_SIDE:
            continue
        patch = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
        vector = cv2.resize(patch, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        vector -= vector.mean()
        norm = float(np.linalg.norm(vector))
        if norm > 1e-3:
            out[row] = vector / norm
    return out


def is_known(descriptor: np.ndarray) -> bool:
    """Whether a descriptor says anything (zero rows stand for 'not measurable')."""
    return bool(np.any(descriptor))


def blend(track: np.ndarray, seen: np.ndarray, keep: float) -> np.ndarray:
    """A track's descriptor after one more sighting: a running mean that keeps ``keep`` of
    the old one (so slow pose and light changes follow), back at unit length."""
    if not is_known(seen):
        return track
    if not is_known(track):
        return seen.copy()
    mixed = keep * track + (1.0 - keep) * seen
    norm = float(np.linalg.norm(mixed))
    return mixed / norm if norm > 1e-6 else seen.copy()
