"""Which detections can be faces at all: landmark geometry and nested duplicates.

A detector now and then boxes hair, a shoulder or a lamp, or boxes one face twice (a
large box around a small one). Such a box starts a track of its own whose "best shot"
shows no face, or half of one. Two checks, both cheap:

- landmark geometry (when the detector gives landmarks): the eyes lie between 20 % and
  70 % of the box height from its top, the mouth between 45 % and 115 %, and the mouth at
  least 15 % of the height below the eyes. On Debian opencv-doc's Megamind.avi real
  faces put their eyes at 37-50 % (1st-99th percentile) and their mouth at 73-83 %; the
  false box YuNet draws around Roxanne's hair (frames 155-198) puts its eyes at 7-11 %.
- nesting: of two boxes where the intersection covers more than 60 % of the smaller
  one, only the more confident is kept.
"""

from __future__ import annotations

import numpy as np

from fiqa_stream.types import Detections

EYE_BAND = (0.20, 0.70)
MOUTH_BAND = (0.45, 1.15)
MIN_EYE_TO_MOUTH = 0.15
MAX_NESTED_OVERLAP = 0.60


def plausible(detections: Detections) -> np.ndarray:
    """(N,) bool: the detections whose landmarks sit where a face's do (all, without landmarks)."""
    keep = np.ones(len(detections.boxes), bool)
    if detections.landmarks is None or not len(keep):
        return keep
    boxes = detections.boxes.astype(np.float64)
    points = detections.landmarks.astype(np.float64)
    height = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    eyes = (points[:, :2, 1].mean(axis=1) - boxes[:, 1]) / height
    mouth = (points[:, 3:, 1].mean(axis=1) - boxes[:, 1]) / height
    return (
        (eyes >= EYE_BAND[0]) & (eyes <= EYE_BAND[1])
        & (mouth >= MOUTH_BAND[0]) & (mouth <= MOUTH_BAND[1])
        & (mouth - eyes >= MIN_EYE_TO_MOUTH)
    )


def not_nested(detections: Detections) -> np.ndarray:
    """(N,) bool: False for a box that mostly overlaps a more confident one."""
    boxes = detections.boxes.astype(np.float64)
    count = len(boxes)
    keep = np.ones(count, bool)
    if count < 2:
        return keep
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    low = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    overlap = np.clip(high - low, 0, None).prod(axis=2)
    smaller = np.maximum(np.minimum(area[:, None], area[None, :]), 1e-6)
    nested = overlap / smaller > MAX_NESTED_OVERLAP
    order = np.argsort(-detections.scores, kind="stable")
    for rank, i in enumerate(order):
        if keep[i]:
            keep[order[rank + 1 :][nested[i, order[rank + 1 :]]]] = False
    return keep


def subset(detections: Detections, keep: np.ndarray) -> Detections:
    """The detections where ``keep`` is True, in their order."""
    return Detections(
        detections.boxes[keep], detections.scores[keep],
        None if detections.landmarks is None else detections.landmarks[keep],
    )
