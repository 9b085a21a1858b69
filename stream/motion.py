"""Motion gating: the detector looks only where and when something moves.

Surveillance cameras mostly film still scenes, and nearly every detection on them finds
nothing new. Per source, :class:`MotionDetector` compares each analysed frame, as a small
blurred grey copy, with a running-average background (as Frigate's motion detector does)
and returns the moving regions in frame pixels. :class:`MotionGate` then plans what the
detector sees of the frame:

- the whole frame when gating is off, on the first frame, when the whole picture changed
  (a scene cut, lights switched: the background is taken anew), when the regions would
  cover most of it anyway, when the frame has no time stamp, and every
  ``full_frame_interval`` seconds, so that a face that never moved is found too;
- nothing at all when nothing moves and no face was tracked within ``track_hold`` seconds;
- otherwise only regions: the moving blobs and the last boxes of the faces being tracked
  (a person who stops moving is still followed), each widened by a margin and to a least
  size, its corners put on the detector's 32-pixel grid, clipped to the frame;
  overlapping regions are merged into one.

:func:`detect_planned` runs the plans of a whole batch in one ``detect`` call: region
crops are shrunk by the factor the detector would shrink the whole frame by (the faces
look as they would in a whole-frame detection, and cost in proportion to their area),
and the boxes and landmarks found are mapped back to the frame. Merged regions never
overlap: no pixel is detected twice.

A frame the detector skips counts as a frame in which nothing was found: the tracker
still advances on it (lost tracks age as they would), which is a no-op when it tracks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from fiqa_stream.detectors.base import Detector
from fiqa_stream.detectors.config import DetectorConfig, ScrfdConfig
from fiqa_stream.stream.config import MotionConfig
from fiqa_stream.stream.tracker import TrackerStep
from fiqa_stream.types import Detections, Frame

# The coarsest stride of the detectors' networks (YuNet, SCRFD, CenterFace): a crop whose
# corner lies on this grid of the detector's input puts the faces on the anchors a
# whole-frame detection uses. Measured with YuNet at 640×360: boxes within about a pixel
# of the whole-frame ones, against 1-3 px for crops placed anywhere.
_GRID = 32
_BLUR = (5, 5)
_DILATE = np.ones((3, 3), np.uint8)
_DILATIONS = 2
_NO_BOXES = np.zeros((0, 4), np.int32)


@dataclass(frozen=True, slots=True)
class Motion:
    """What moved in one frame.

    Attributes:
        boxes: (N, 4) int32 ``[x1, y1, x2, y2]`` of the moving blobs, in frame pixels.
        whole: the background was taken anew from this frame (the first one, or the whole
            picture changed): everything in it may be new.
    """

    boxes: np.ndarray
    whole: bool


class MotionDetector:
    """The moving regions of one source's analysed frames, against a running-average background.

    Args:
        config: grey-copy size, thresholds and background learning rate.
    """

    def __init__(self, config: MotionConfig) -> None:
        self._config = config
        self._background: np.ndarray | None = None

    def observe(self, image: np.ndarray) -> Motion:
        """The regions of ``image`` (H×W×3 BGR) that differ from the background; the
        background then learns from ``image``."""
        config = self._config
        height, width = image.shape[:2]
        small_h = min(config.frame_height, height)
        small_w = max(1, round(width * small_h / height))
        # Linear, not area, interpolation: 0.3 ms instead of 2-4 ms on a 720p frame, and the
        # blur below takes out the aliasing that matters for differences.
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_LINEAR)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), _BLUR, 0)
        background = self._background
        if background is None or background.shape != grey.shape:
            self._background = grey.astype(np.float32)
            return Motion(_NO_BOXES, whole=True)
        difference = cv2.absdiff(grey, cv2.convertScaleAbs(background))
        _, moving = cv2.threshold(difference, config.threshold - 1, 255, cv2.THRESH_BINARY)
        if cv2.countNonZero(moving) >= config.reseed_share * moving.size:
            # Another scene or other lighting: learning it slowly would report the whole
            # frame as moving for many frames; take it as the new background at once.
            self._background = grey.astype(np.float32)
            return Motion(_NO_BOXES, whole=True)
        cv2.accumulateWeighted(grey, background, config.learning_rate)
        moving = cv2.dilate(moving, _DILATE, iterations=_DILATIONS)
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        least = config.min_area * moving.size
        rects = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= least]
        if not rects:
            return Motion(_NO_BOXES, whole=False)
        xywh = np.array(rects, np.float64)
        scale = np.array([width / small_w, height / small_h] * 2)
        boxes = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]) * scale
        return Motion(np.round(boxes).astype(np.int32), whole=False)


@dataclass(frozen=True, slots=True)
class DetectionPlan:
    """What the detector sees of one frame.

    Attributes:
        whole: the whole frame is detected.
        regions: (N, 4) int32 ``[x1, y1, x2, y2]`` crops to detect when not ``whole``, in
            frame pixels, inside the frame, not overlapping; empty: the frame is skipped.
    """

    whole: bool
    regions: np.ndarray = field(default_factory=lambda: _NO_BOXES)

    @property
    def skipped(self) -> bool:
        return not self.whole and len(self.regions) == 0


WHOLE = DetectionPlan(whole=True)


def frame_time(frame: Frame) -> float | None:
    """Seconds on the source's own clock: capture time for live frames, media time for files."""
    if frame.captured_at is not None:
        return frame.captured_at.timestamp()
    return frame.pts


#: Seconds a frame's time may lie before an earlier frame's without counting as the clock
#: jumping back: some files hand out frames a little out of presentation order
#: (Megamind.avi: every third frame 42 ms early).
_REORDER_SLACK = 0.5


class MotionGate:
    """Plans the detection of each analysed frame of one source.

    Args:
        config: the motion section of the config.
        detector: the detector's config (regions are laid on the grid of its input).
        enabled: whether this source is gated; when not, every frame is detected whole.
    """

    def __init__(self, config: MotionConfig, detector: DetectorConfig, enabled: bool) -> None:
        self._config = config
        self._detector = detector
        self.enabled = enabled
        self._motion = MotionDetector(config)
        self._last_whole: float | None = None
        # Track id -> (last box found, frame time it was found at).
        self._tracked: dict[int, tuple[np.ndarray, float]] = {}
        # The frame last observed and not yet planned, with its motion and time: every frame
        # is observed once, whether ``needs_whole`` or ``plan`` sees it first.
        self._observed: tuple[Frame, Motion, float | None] | None = None

    def needs_whole(self, frame: Frame) -> bool:
        """Whether ``frame`` is detected whole whatever its source tracks: the first frame,
        one ``full_frame_interval`` after the last whole one, or most of the picture changed."""
        if not self.enabled:
            return True
        motion, now = self._observe(frame)
        last = self._last_whole
        return (now is None or motion.whole or last is None
                or not -_REORDER_SLACK <= now - last < self._config.full_frame_interval)

    def plan(self, frame: Frame, open_tracks: int) -> DetectionPlan:
        """What to detect in ``frame``, given how many tracks its source's tracker holds."""
        if not self.enabled:
            return WHOLE
        whole = self.needs_whole(frame)
        motion, now = self._observe(frame)
        self._observed = None
        if now is None:
            return WHOLE
        config = self._config
        if open_tracks == 0:
            self._tracked.clear()
        self._tracked = {
            track: (box, seen) for track, (box, seen) in self._tracked.items()
            if -_REORDER_SLACK <= now - seen <= config.track_hold
        }
        if whole:
            self._last_whole = now
            return WHOLE
        height, width = frame.height, frame.width
        grid = _GRID / whole_frame_scale(self._detector, width, height)
        least = config.min_region * height
        boxes = [_widened(box, config.region_margin * height, least, width, height, grid) for box in motion.boxes]
        for box, _ in self._tracked.values():
            margin = config.track_margin * float(max(box[2] - box[0], box[3] - box[1]))
            boxes.append(_widened(box, margin, least, width, height, grid))
        if not boxes:
            return DetectionPlan(whole=False)
        regions = _merged(np.array(boxes, np.int32))
        area = np.prod(regions[:, 2:] - regions[:, :2], axis=1).sum()
        if area > config.max_region_share * width * height:
            self._last_whole = now
            return WHOLE
        return DetectionPlan(whole=False, regions=regions)

    def _observe(self, frame: Frame) -> tuple[Motion, float | None]:
        if self._observed is None or self._observed[0] is not frame:
            self._observed = (frame, self._motion.observe(frame.image), frame_time(frame))
        return self._observed[1], self._observed[2]

    def follow(self, frame: Frame, found: Detections, step: TrackerStep) -> None:
        """Remember where the tracker found its faces in ``frame``: they are detected there next."""
        if not self.enabled:
            return
        now = frame_time(frame)
        if now is None:
            return
        for track in step.ended:
            self._tracked.pop(track, None)
        for assignment in step.assigned:
            self._tracked[assignment.track_id] = (found.boxes[assignment.detection].copy(), now)


def plan_wave(requests: Sequence[tuple[MotionGate, Frame, int]]) -> list[DetectionPlan]:
    """The plans of the longest head of ``requests`` that can be detected and tracked together.

    Each request is a frame with its source's gate and the source's open tracks. Once a
    gated source has a frame that must be detected whole (``needs_whole``: its first, one
    every ``full_frame_interval``, a changed picture), the head ends before its next frame
    that the gate would detect in regions: those lie where the whole frame's faces stand,
    known only once it was tracked (``follow``); planned before, they missed a face that
    never moves until the next whole frame. A frame detected whole only because its regions
    would cover most of the picture does not end the head: its faces move or are tracked
    already. The first request is always planned, so each wave makes progress.
    """
    plans: list[DetectionPlan] = []
    awaiting: set[int] = set()
    for gate, frame, open_tracks in requests:
        needed = gate.enabled and gate.needs_whole(frame)
        if id(gate) in awaiting and not needed:
            break
        plans.append(gate.plan(frame, open_tracks))
        if needed:
            awaiting.add(id(gate))
    return plans


def _widened(box: Sequence[float] | np.ndarray, margin: float, least: float, width: int, height: int,
             grid: float) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` on every side and to at least ``least`` per side (moved
    inside the frame where it can), its corners moved outward onto the ``grid``, clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, y1, x2, y2 = x1 - margin, y1 - margin, x2 + margin, y2 + margin
    x1, x2 = _at_least(x1, x2, least, width)
    y1, y2 = _at_least(y1, y2, least, height)
    x1, y1 = (round(np.floor(v / grid) * grid) for v in (x1, y1))
    x2, y2 = (round(np.ceil(v / grid) * grid) for v in (x2, y2))
    return (max(0, x1), max(0, y1), min(width, x2), min(height, y2))


def _at_least(low: float, high: float, least: float, limit: int) -> tuple[float, float]:
    if high - low >= least:
        return low, high
    centre = (low + high) / 2
    low = min(max(0.0, centre - least / 2), max(0.0, limit - least))
    return low, low + least


def _merged(boxes: np.ndarray) -> np.ndarray:
    """Boxes that overlap replaced by their union until none overlap."""
    merged = [list(map(int, box)) for box in boxes]
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(len(merged) - 1, i, -1):
                a, b = merged[i], merged[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    merged[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del merged[j]
                    changed = True
    return np.array(merged, np.int32)


def whole_frame_scale(detector: DetectorConfig, width: int, height: int) -> float:
    """The factor by which ``detector`` shrinks a whole ``width``×``height`` frame (1: not at
    all): YuNet and CenterFace fit it to ``max_width``, SCRFD into its square ``input_size``."""
    if isinstance(detector, ScrfdConfig):
        return min(1.0, detector.input_size / max(width, height))
    return min(1.0, detector.max_width / width)


def detect_planned(detector: Detector, detector_config: DetectorConfig, images: Sequence[np.ndarray],
                   plans: Sequence[DetectionPlan]) -> list[Detections]:
    """The faces of each image as its plan says, found in one ``detect`` call.

    Args:
        detector: the detector.
        detector_config: its config: region crops are shrunk as it shrinks whole frames.
        images: the batch's H×W×3 BGR frames.
        plans: one plan per image.

    Returns:
        One ``Detections`` per image, in its own pixels; empty for skipped frames.
    """
    inputs: list[np.ndarray] = []
    # Per detector input: the image it belongs to, its offset there and the factor back.
    placements: list[tuple[int, int, int, float]] = []
    for index, (image, plan) in enumerate(zip(images, plans, strict=True)):
        if plan.whole:
            inputs.append(image)
            placements.append((index, 0, 0, 1.0))
            continue
        height, width = image.shape[:2]
        scale = whole_frame_scale(detector_config, width, height)
        for x1, y1, x2, y2 in plan.regions.tolist():
            crop = image[y1:y2, x1:x2]
            if scale < 1.0:
                size = (max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale)))
                crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
                back = (x2 - x1) / size[0]
            else:
                back = 1.0
            inputs.append(np.ascontiguousarray(crop))
            placements.append((index, x1, y1, back))
    found = detector.detect(inputs) if inputs else []
    parts: list[list[Detections]] = [[] for _ in images]
    for (index, dx, dy, back), detections in zip(placements, found, strict=True):
        if len(detections):
            parts[index].append(_placed(detections, dx, dy, back))
    return [_joined(p) for p in parts]


def _placed(detections: Detections, dx: int, dy: int, factor: float) -> Detections:
    """Detections of a crop moved to the frame: scaled by ``factor``, shifted by the crop's offset."""
    if factor != 1.0:
        detections = detections.scaled(factor)
    if dx == 0 and dy == 0:
        return detections
    offset = np.array([dx, dy], np.float32)
    return Detections(
        boxes=detections.boxes + np.tile(offset, 2),
        scores=detections.scores,
        landmarks=None if detections.landmarks is None else detections.landmarks + offset,
    )


def _joined(parts: list[Detections]) -> Detections:
    if not parts:
        return Detections.empty()
    if len(parts) == 1:
        return parts[0]
    landmarks = [p.landmarks for p in parts]
    return Detections(
        boxes=np.concatenate([p.boxes for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        landmarks=None if any(m is None for m in landmarks) else np.concatenate(landmarks),  # type: ignore[arg-type]
    )
