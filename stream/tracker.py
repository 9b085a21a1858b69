"""ByteTrack: multi-face tracking by two-stage association on high and low confidences.

Per analysed frame, every open track's box is predicted by a Kalman filter, then:

1. high-confidence detections (``>= high_confidence``) are matched to confirmed and
   lost tracks by IoU (Hungarian assignment, IoU at least ``match_iou``);
2. low-confidence detections (``[low_confidence, high_confidence)``) are matched to the
   confirmed tracks still unmatched (IoU at least 0.5): a briefly blurred or occluded
   face keeps its track instead of breaking it; unmatched confirmed tracks turn lost;
3. the remaining high detections are matched to tentative tracks; a tentative track
   that misses a frame ends at once (it was likely a false detection);
4. high detections still unmatched with ``>= new_track_confidence`` start tentative
   tracks, confirmed after ``min_hits`` consecutive sightings.

Lost tracks end after ``lost_frames`` analysed frames without a match. Track ids count
from 1 per tracker instance (never shared between instances).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from fiqa_stream.stream.config import TrackerConfig
from fiqa_stream.stream.kalman import BoxKalman
from fiqa_stream.types import Detections, TrackState

_LOW_STAGE_IOU = 0.5


@dataclass(frozen=True, slots=True)
class TrackAssignment:
    """A detection of this frame that belongs to a track."""

    track_id: int
    detection: int
    state: TrackState


@dataclass(frozen=True, slots=True)
class TrackerStep:
    """The outcome of one ``update``: assignments and the ids of tracks that ended."""

    assigned: list[TrackAssignment] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Track:
    id: int
    filter: BoxKalman
    state: TrackState
    hits: int = 1
    misses: int = 0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) boxes [x1, y1, x2, y2]."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9), np.float64)


def _associate(
    tracks: list[_Track], boxes: np.ndarray, candidates: list[int], min_iou: float
) -> tuple[list[tuple[_Track, int]], list[_Track], list[int]]:
    """Hungarian matching on IoU; returns matches, unmatched tracks, unmatched detections."""
    if not tracks or not candidates:
        return [], list(tracks), list(candidates)
    predicted = np.stack([t.filter.box for t in tracks])
    iou = iou_matrix(predicted, boxes[candidates])
    rows, cols = linear_sum_assignment(-iou)
    matches, matched_tracks, matched_dets = [], set(), set()
    for row, col in zip(rows, cols, strict=True):
        if iou[row, col] >= min_iou:
            matches.append((tracks[row], candidates[col]))
            matched_tracks.add(row)
            matched_dets.add(col)
    unmatched_tracks = [t for i, t in enumerate(tracks) if i not in matched_tracks]
    unmatched_dets = [d for j, d in enumerate(candidates) if j not in matched_dets]
    return matches, unmatched_tracks, unmatched_dets


class ByteTracker:
    """Tracks the faces of one source across its analysed frames."""

    def __init__(self, config: TrackerConfig) -> None:
        self._config = config
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def open_tracks(self) -> int:
        return len(self._tracks)

    def update(self, detections: Detections) -> TrackerStep:
        """Advance one analysed frame with its detections."""
        config = self._config
        boxes, scores = detections.boxes, detections.scores
        high = [i for i in range(len(detections)) if scores[i] >= config.high_confidence]
        low = [i for i in range(len(detections)) if config.low_confidence <= scores[i] < config.high_confidence]
        for track in self._tracks:
            track.filter.predict()

        step = TrackerStep()
        pool = [t for t in self._tracks if t.state in (TrackState.CONFIRMED, TrackState.LOST)]
        first, unmatched_pool, unmatched_high = _associate(pool, boxes, high, config.match_iou)
        still_confirmed = [t for t in unmatched_pool if t.state is TrackState.CONFIRMED]
        second, unmatched_confirmed, _ = _associate(still_confirmed, boxes, low, _LOW_STAGE_IOU)
        for track, detection in first + second:
            self._hit(track, boxes[detection])
            track.state = TrackState.CONFIRMED
            step.assigned.append(TrackAssignment(track.id, detection, TrackState.CONFIRMED))
        for track in unmatched_confirmed:
            track.state = TrackState.LOST
        for track in unmatched_pool:
            if track.state is TrackState.LOST:
                track.misses += 1

        tentative = [t for t in self._tracks if t.state is TrackState.TENTATIVE]
        third, missed_tentative, fresh = _associate(tentative, boxes, unmatched_high, config.match_iou)
        for track, detection in third:
            self._hit(track, boxes[detection])
            if track.hits >= config.min_hits:
                track.state = TrackState.CONFIRMED
            step.assigned.append(TrackAssignment(track.id, detection, track.state))
        for track in missed_tentative:
            track.state = TrackState.ENDED

        for detection in fresh:
            if scores[detection] >= config.new_track_confidence:
                state = TrackState.CONFIRMED if config.min_hits <= 1 else TrackState.TENTATIVE
                track = _Track(self._next_id, BoxKalman(boxes[detection]), state)
                self._next_id += 1
                self._tracks.append(track)
                step.assigned.append(TrackAssignment(track.id, detection, state))

        for track in self._tracks:
            if track.state is TrackState.LOST and track.misses > config.lost_frames:
                track.state = TrackState.ENDED
        step.ended.extend(t.id for t in self._tracks if t.state is TrackState.ENDED)
        self._tracks = [t for t in self._tracks if t.state is not TrackState.ENDED]
        step.assigned.sort(key=lambda a: a.detection)
        return step

    def finish(self) -> list[int]:
        """End every open track (end of input, outage, shutdown); returns their ids."""
        ended = [t.id for t in self._tracks]
        self._tracks = []
        return ended

    def reset(self) -> None:
        """Forget every track and count ids from 1 again (this instance only)."""
        self._tracks = []
        self._next_id = 1

    @staticmethod
    def _hit(track: _Track, box: np.ndarray) -> None:
        track.filter.update(box)
        track.hits += 1
        track.misses = 0
