"""Is a sighting whole: inside the frame, and free of decode garbage?

Damaged video shows garbage that no detector or quality model was trained to see:
rows or bands of one constant colour (FFmpeg's green, white or black bars) and rows
shifted against their neighbours. Both leave a straight horizontal edge across most of
the face box, which a real face does not have. Over the face box, per row boundary,
the share of columns whose luma jumps by more than 25 is measured, and per row the
share of pixels within 3 of the row's median colour; the crop is garbled when the
largest jump share reaches 0.55 or the largest constant share 0.75. Measured on Debian
opencv-doc's Megamind.avi (clean): at most 0.50 and 0.62; on Megamind_bugy.avi's damaged
faces: 0.58-1.00 for the bars and shifted rows across a face.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_EDGE_SHARE = 0.55
MAX_CONSTANT_SHARE = 0.75
_JUMP = 25
_CONSTANT = 3
_MIN_SIDE = 8


def is_garbled(image: np.ndarray, box: np.ndarray) -> bool:
    """Whether the part of ``image`` inside ``box`` shows decode garbage."""
    height, width = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 - x1 < _MIN_SIDE or y2 - y1 < _MIN_SIDE:
        return False
    patch = image[y1:y2, x1:x2]
    luma = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.int16)
    edge_share = (np.abs(np.diff(luma, axis=0)) > _JUMP).mean(axis=1).max()
    if edge_share >= MAX_EDGE_SHARE:
        return True
    colours = patch.astype(np.int16)
    median = np.median(colours, axis=1, keepdims=True)
    constant_share = (np.abs(colours - median).max(axis=2) <= _CONSTANT).mean(axis=1).max()
    return bool(constant_share >= MAX_CONSTANT_SHARE)


def is_cut_off(box: np.ndarray, width: int, height: int) -> bool:
    """Whether the box reaches past the frame's edge (part of the face is not in the picture)."""
    return bool(box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height)
