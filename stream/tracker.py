"""ByteTrack: multi-face tracking by two-stage association on high and low confidences.

Per analysed frame, the boxes of all open tracks are predicted by a Kalman filter, then:

1. high-confidence detections (``>= high_confidence``) are matched to confirmed and
   lost tracks by IoU (Hungarian assignment on 1 - IoU, IoU at least ``match_iou``);
2. low-confidence detections (``[low_confidence, high_confidence)``) are matched to the
   confirmed tracks still unmatched (IoU at least 0.5): a briefly blurred or occluded
   face keeps its track instead of breaking it; unmatched confirmed tracks turn lost;
3. the remaining high detections are matched to tentative tracks (IoU at least
   ``max(match_iou, 0.3)``: ByteTrack's 0.7 cost, never looser than the first stage),
   then, with appearance, by look near where they stand (as a lost track resumes, below):
   a tentative track has no velocity yet, and at a sampled rate a walking face moves most
   of its width between analysed frames; a tentative track that misses a frame ends at
   once (it was likely a false detection);
4. high detections still unmatched with ``>= new_track_confidence`` start tentative
   tracks, confirmed after ``min_hits`` consecutive sightings (at once when it is 1).

Appearance (stream/appearance.py) guards every stage when the tracker is given the
frame: a pair whose descriptors correlate below ``appearance_min_similarity`` is never
matched (a face that takes another's place is a new track, not the old one's
continuation), and among allowed pairs the assignment prefers the similar ones, so
faces that cross keep their ids. A lost or confirmed track that the first stage could
not match resumes on an unmatched high detection that looks like it (``reid_min_similarity``,
against its running look or one of the last 8 looks it kept, one every 5 sightings)
within ``reid_max_distance`` box widths of its predicted box: a face back from behind
an occluder keeps its id even when its motion was not predicted.

Detections below ``low_confidence`` are ignored. A lost track ends once it has gone
more than ``lost_frames`` analysed frames without a match; until then a match confirms
it again under the same id. Track ids count from 1 per tracker instance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from fiqa_stream.stream import appearance
from fiqa_stream.stream.config import TrackerConfig
from fiqa_stream.stream.kalman import BoxKalman
from fiqa_stream.types import Detections, TrackState

_LOW_STAGE_IOU = 0.5
_TENTATIVE_STAGE_IOU = 0.3
# Cost of a pair below its IoU gate: it never beats a valid pair, so gating before the
# assignment (as ByteTrack's lapjv threshold does) cannot trade a valid match away.
_FORBIDDEN = 1e6
# Share of a track's appearance kept at each sighting: about the last 3-4 sightings count.
_LOOK_KEEP = 0.7
# Looks remembered beside the running one (one every few sightings), so a face that comes
# back from behind an occluder is compared with how it looked before it went in, too.
_GALLERY_SIZE = 8
_GALLERY_EVERY = 5


@dataclass(frozen=True, slots=True)
class TrackAssignment:
    """A detection of this frame that belongs to a track.

    Attributes:
        track_id: the track's id, counted from 1 per tracker instance.
        detection: index into the ``Detections`` passed to ``update``.
        state: ``TENTATIVE`` or ``CONFIRMED`` after this step.
    """

    track_id: int
    detection: int
    state: TrackState


@dataclass(frozen=True, slots=True)
class TrackerStep:
    """The outcome of one ``update``.

    Attributes:
        assigned: one entry per detection that belongs to a track, by detection index.
        ended: ids of the tracks that ended at this step (lost too long, or tentative
            tracks that missed).
    """

    assigned: list[TrackAssignment] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Track:
    id: int
    kalman: BoxKalman
    state: TrackState
    look: np.ndarray | None = None
    gallery: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=_GALLERY_SIZE))
    hits: int = 1
    misses: int = 0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes [x1, y1, x2, y2].

    Args:
        a: (N, 4) boxes.
        b: (M, 4) boxes.

    Returns:
        (N, M) float64 IoU in [0, 1]; 0 for empty or inverted boxes.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass(frozen=True, slots=True)
class _Looks:
    """Appearance of this frame's detections, and the similarity a pair needs."""

    descriptors: np.ndarray
    min_similarity: float

    def similarity(self, tracks: list[_Track], candidates: list[int], *, unknown: float = 1.0) -> np.ndarray:
        """(tracks, candidates) correlation with the track's running look or, if higher, one
        of its remembered looks; ``unknown`` where either side cannot be measured (1 by
        default: an unmeasurable face is judged by motion alone)."""
        theirs = self.descriptors[candidates]
        known_theirs = np.any(theirs, axis=1)
        rows = []
        for track in tracks:
            looks = [look for look in (track.look, *track.gallery) if look is not None and appearance.is_known(look)]
            if not looks:
                rows.append(np.full(len(candidates), unknown))
                continue
            best = (np.stack(looks) @ theirs.T).max(axis=0)
            rows.append(np.where(known_theirs, best, unknown))
        return np.stack(rows)


def _associate(
    tracks: list[_Track], boxes: np.ndarray, candidates: list[int], min_iou: float, looks: _Looks | None
) -> tuple[list[tuple[_Track, int]], list[_Track], list[int]]:
    """Match tracks to candidate detections; returns matches, unmatched tracks and detections."""
    if not tracks or not candidates:
        return [], list(tracks), list(candidates)
    iou = iou_matrix(np.stack([t.kalman.box for t in tracks]), boxes[candidates])
    allowed = iou >= min_iou
    cost = 1.0 - iou
    if looks is not None:
        similarity = looks.similarity(tracks, candidates)
        allowed &= similarity >= looks.min_similarity
        cost = cost + (1.0 - similarity)
    return _assign(tracks, candidates, allowed, cost)


def _reidentify(
    tracks: list[_Track], boxes: np.ndarray, candidates: list[int], looks: _Looks, config: TrackerConfig
) -> tuple[list[tuple[_Track, int]], list[int]]:
    """Match tracks that motion could not match (lost ones, confirmed ones that just
    missed, and tentative ones, whose motion is not known yet) to detections by
    appearance near where they were predicted."""
    lost = [t for t in tracks if t.look is not None]
    if not lost or not candidates:
        return [], list(candidates)
    predicted = np.stack([t.kalman.box for t in lost])
    found = boxes[candidates]
    distance = np.linalg.norm(_centres(predicted)[:, None, :] - _centres(found)[None, :, :], axis=2)
    reach = config.reid_max_distance * np.maximum(predicted[:, 2] - predicted[:, 0], 1.0)
    # Resuming rests on appearance alone: a face whose look cannot be measured never resumes a track.
    similarity = looks.similarity(lost, candidates, unknown=0.0)
    allowed = (distance <= reach[:, None]) & (similarity >= config.reid_min_similarity)
    matched, _, unmatched = _assign(lost, candidates, allowed, 1.0 - similarity)
    return matched, unmatched


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def _assign(
    tracks: list[_Track], candidates: list[int], allowed: np.ndarray, cost: np.ndarray
) -> tuple[list[tuple[_Track, int]], list[_Track], list[int]]:
    rows, cols = linear_sum_assignment(np.where(allowed, cost, _FORBIDDEN))
    pairs = [(r, c) for r, c in zip(rows.tolist(), cols.tolist(), strict=True) if allowed[r, c]]
    matched_rows = {r for r, _ in pairs}
    matched_cols = {c for _, c in pairs}
    return (
        [(tracks[r], candidates[c]) for r, c in pairs],
        [t for i, t in enumerate(tracks) if i not in matched_rows],
        [d for j, d in enumerate(candidates) if j not in matched_cols],
    )


class ByteTracker:
    """Tracks the faces of one source across its analysed frames.

    Args:
        config: thresholds and lifetimes of the tracker.
    """

    def __init__(self, config: TrackerConfig) -> None:
        self._config = config
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def open_tracks(self) -> int:
        """Number of tracks not yet ended (tentative, confirmed and lost)."""
        return len(self._tracks)

    def update(self, detections: Detections, image: np.ndarray | None = None) -> TrackerStep:
        """Advance one analysed frame.

        Args:
            detections: the frame's detections (may be empty).
            image: the frame they were found in; without it, or with appearance turned
                off, association is by motion alone.

        Returns:
            The detections assigned to tracks and the ids of the tracks that ended.
        """
        config = self._config
        boxes, scores = detections.boxes, detections.scores
        high = np.flatnonzero(scores >= config.high_confidence).tolist()
        low = np.flatnonzero(
            (scores >= config.low_confidence) & (scores < config.high_confidence)
        ).tolist()
        for track in self._tracks:
            track.kalman.predict(hold_size=track.state is TrackState.LOST)

        looks = None
        if image is not None and config.appearance_min_similarity > 0 and len(boxes):
            looks = _Looks(appearance.describe(image, boxes), config.appearance_min_similarity)

        step = TrackerStep()
        pool = [t for t in self._tracks if t.state in (TrackState.CONFIRMED, TrackState.LOST)]
        first, unmatched_pool, unmatched_high = _associate(pool, boxes, high, config.match_iou, looks)
        if looks is not None:
            resumed, unmatched_high = _reidentify(unmatched_pool, boxes, unmatched_high, looks, config)
            first += resumed
            unmatched_pool = [t for t in unmatched_pool if all(t is not r for r, _ in resumed)]
        still_confirmed = [t for t in unmatched_pool if t.state is TrackState.CONFIRMED]
        second, unmatched_confirmed, _ = _associate(still_confirmed, boxes, low, _LOW_STAGE_IOU, looks)
        for track, detection in first + second:
            self._hit(track, boxes[detection], looks, detection)
            track.state = TrackState.CONFIRMED
            step.assigned.append(TrackAssignment(track.id, detection, TrackState.CONFIRMED))
        for track in unmatched_confirmed:
            track.state = TrackState.LOST
        for track in unmatched_pool:
            if track.state is TrackState.LOST:
                track.misses += 1
                if track.misses > config.lost_frames:
                    track.state = TrackState.ENDED

        tentative = [t for t in self._tracks if t.state is TrackState.TENTATIVE]
        tentative_iou = max(config.match_iou, _TENTATIVE_STAGE_IOU)
        third, missed, fresh = _associate(tentative, boxes, unmatched_high, tentative_iou, looks)
        if looks is not None:
            # A tentative track has no velocity yet: at a sampled rate (5 analysed frames/s)
            # a walking face moves most of its width between frames and overlaps too little
            # with where the track stands, so it would restart as a new tentative track at
            # every frame and never be confirmed.
            moved, fresh = _reidentify(missed, boxes, fresh, looks, config)
            third += moved
            missed = [t for t in missed if all(t is not m for m, _ in moved)]
        for track, detection in third:
            self._hit(track, boxes[detection], looks, detection)
            if track.hits >= config.min_hits:
                track.state = TrackState.CONFIRMED
            step.assigned.append(TrackAssignment(track.id, detection, track.state))
        for track in missed:
            track.state = TrackState.ENDED

        step.ended.extend(t.id for t in self._tracks if t.state is TrackState.ENDED)
        self._tracks = [t for t in self._tracks if t.state is not TrackState.ENDED]

        for detection in fresh:
            if scores[detection] >= config.new_track_confidence:
                state = TrackState.CONFIRMED if config.min_hits <= 1 else TrackState.TENTATIVE
                look = None if looks is None else looks.descriptors[detection].copy()
                track = _Track(self._next_id, BoxKalman(boxes[detection]), state, look)
                self._next_id += 1
                self._tracks.append(track)
                step.assigned.append(TrackAssignment(track.id, detection, state))

        step.assigned.sort(key=lambda a: a.detection)
        return step

    def finish(self) -> list[int]:
        """End every open track (end of input, outage, shutdown).

        Returns:
            The ids of the tracks that were open, in creation order; the tracker is then
            empty (ids keep counting on).
        """
        ended = [t.id for t in self._tracks]
        self._tracks = []
        return ended

    def reset(self) -> None:
        """Forget every track and count ids from 1 again (this instance only)."""
        self._tracks = []
        self._next_id = 1

    @staticmethod
    def _hit(track: _Track, box: np.ndarray, looks: _Looks | None, detection: int) -> None:
        track.kalman.update(box)
        track.hits += 1
        track.misses = 0
        if looks is not None:
            seen = looks.descriptors[detection]
            track.look = seen.copy() if track.look is None else appearance.blend(track.look, seen, _LOOK_KEEP)
            if track.hits % _GALLERY_EVERY == 0 and appearance.is_known(seen):
                track.gallery.append(seen.copy())
