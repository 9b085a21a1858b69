"""Best-shot selection per track, with bounded memory.

Per open track only the best sighting so far is kept: its quality, box, landmarks,
times and the face crop, and a reference to its frame only when a sink stores
frames. Policies decide when events go out:

- ``on_end``: one ``final`` event when the track ends;
- ``periodic``: an ``update`` event when the best improved, at most every ``period``
  seconds of stream time, and the ``final`` event at the end;
- ``early``: an ``update`` as soon as the best passes ``threshold``, another only when
  it improves by ``margin``, and the ``final`` event at the end.

Every track that meets ``min_track_length`` ends with exactly one ``final`` event
carrying its best sighting. Event ids are ``source:run:track:seq``: ``run`` is new for
every run of a source (``new_run_id``), so two runs never share an id, not even of two
files with the same stem or a camera after a restart; ``seq`` counts the track's
events from 0. An event keeps its id wherever it goes, journal replays included.

A dual-stream camera's frames carry the full-resolution frame they were paired with
(``Frame.full``): tracking and standing are judged on the small detect frame, but the
crop, the stored frame, the box, the first box and the landmarks of its events are those
of the full-resolution frame.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

import cv2
import numpy as np

from fiqa_stream.scorers.align import align_face, loose_crop
from fiqa_stream.stream import integrity
from fiqa_stream.stream.config import CropConfig, SelectionConfig
from fiqa_stream.types import BestShot, EventKind, Frame, Quality


class Standing(IntEnum):
    """How a sighting ranks before its quality counts: a whole face on a clean frame beats
    any face cut by the frame's edge, which beats any face under decode garbage."""

    GARBLED = 0
    CUT_OFF = 1
    WHOLE = 2


@dataclass(slots=True)
class _Sighting:
    standing: Standing
    quality: Quality
    frame_index: int
    pts: float | None
    captured_at: datetime | None
    box: np.ndarray
    landmarks: np.ndarray | None
    crop: np.ndarray
    frame: np.ndarray | None


@dataclass(slots=True)
class _TrackRecord:
    sightings: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    first_frame_index: int | None = None
    first_box: tuple[float, float, float, float] | None = None
    best: _Sighting | None = None
    events: int = 0
    emitted_quality: float | None = None
    emitted_at: float | None = None


def new_run_id() -> str:
    """A new run id: its start time in UTC (so runs sort in order) and 48 random bits
    (so runs that start in the same second still differ), e.g. ``20261201T130512Z-3fa9c1d2e07b``.

    A thousand runs started in one second share an id with odds of about 2e-9; with the
    24 bits there were before, the odds were 3 %, and one test run met them."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"


def _box_tuple(box: np.ndarray) -> tuple[float, float, float, float]:
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _scaled(points: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """A copy of a box (x1, y1, x2, y2) or of (x, y) landmarks, each axis multiplied by its factor."""
    factors = np.array(scale * (points.shape[-1] // 2), np.float32)
    return (points * factors).astype(np.float32)


def _stream_time(frame: Frame) -> float:
    return frame.pts if frame.pts is not None else time.monotonic()


class BestShotSelector:
    """Keeps the best sighting of every open track of one source and emits events.

    Args:
        run_id: this run of the source (``new_run_id``), part of every event id.
    """

    def __init__(
        self, source: str, selection: SelectionConfig, crop: CropConfig, model: str, *,
        run_id: str, keep_frames: bool = False,
    ) -> None:
        self._source = source
        self.run_id = run_id
        self._keep_frames = keep_frames
        self._config = selection
        self._crop = crop
        # What the handed-over crop adds around the box, where garbage spoils the shot too.
        self._crop_margin = crop.margin if crop.mode == "loose" else 0.0
        self._model = model
        self._tracks: dict[int, _TrackRecord] = {}
        self.tracks_seen = 0
        #: Sightings of ended tracks that yielded no final event, by reason (stream/drops.py names them).
        self.dropped: Counter[str] = Counter()

    @property
    def open_tracks(self) -> int:
        return len(self._tracks)

    def observe(
        self, track_id: int, frame: Frame, box: np.ndarray, landmarks: np.ndarray | None, quality: Quality
    ) -> list[BestShot]:
        """Record one scored sighting; returns the update events the policy emits now."""
        record = self._tracks.get(track_id)
        if record is None:
            record = self._tracks[track_id] = _TrackRecord()
            self.tracks_seen += 1
        record.sightings += 1
        now = _stream_time(frame)
        if record.first_frame_index is None:
            record.first_seen = frame.pts
            record.first_frame_index = frame.index
            record.first_box = _box_tuple(_scaled(box, frame.scale))
        record.last_seen = frame.pts
        standing = self._standing(frame, box, record.best, quality.score)
        if standing is not None:
            record.best = self._sighting(standing, quality, frame, box, landmarks)
        if record.sightings < self._config.min_track_length or not self._update_due(record, now):
            return []
        record.emitted_at = now
        return [self._event(track_id, record, EventKind.UPDATE)]

    def end(self, track_id: int) -> list[BestShot]:
        """The track ended: its final event, if it was long enough to count and had a
        sighting on an intact frame."""
        record = self._tracks.pop(track_id, None)
        if record is None:
            return []
        if record.sightings < self._config.min_track_length:
            self.dropped["short_track"] += record.sightings
            return []
        if record.best is None:
            self.dropped["corrupt_frames_only"] += record.sightings
            return []
        return [self._event(track_id, record, EventKind.FINAL)]

    def _sighting(self, standing: Standing, quality: Quality, frame: Frame, box: np.ndarray,
                  landmarks: np.ndarray | None) -> _Sighting:
        """The new best sighting, its crop cut now. A dual-stream camera's is cut from the
        full-resolution frame (converted here, the only place it ever is), its box and
        landmarks scaled there; the events carry those."""
        image = frame.image if frame.full is None else frame.full.image()
        scale = frame.scale
        box = _scaled(box, scale)
        landmarks = None if landmarks is None else _scaled(landmarks, scale)
        return _Sighting(
            standing, quality, frame.index, frame.pts, frame.captured_at, box, landmarks,
            self._cut(image, box, landmarks), image if self._keep_frames else None,
        )

    def _standing(self, frame: Frame, box: np.ndarray, best: _Sighting | None, score: float) -> Standing | None:
        """The new sighting's standing if it replaces ``best``, else None. A frame the decoder
        marked corrupt never does; garbage is looked for only when it could matter, in the
        box and in the margin a loose crop hands over with it."""
        if frame.corrupt:
            return None
        height, width = frame.image.shape[:2]
        standing = Standing.CUT_OFF if integrity.is_cut_off(box, width, height) else Standing.WHOLE
        if best is not None and (standing, score) <= (best.standing, best.quality.score):
            return None
        if integrity.is_garbled(frame.image, box, self._crop_margin):
            standing = Standing.GARBLED
            if best is not None and (standing, score) <= (best.standing, best.quality.score):
                return None
        return standing

    def finish(self) -> list[BestShot]:
        """End every open track (end of input or shutdown)."""
        events: list[BestShot] = []
        for track_id in sorted(self._tracks):
            events.extend(self.end(track_id))
        return events

    def _update_due(self, record: _TrackRecord, now: float) -> bool:
        best = record.best
        if best is None:
            return False
        improved = record.emitted_quality is None or best.quality.score > record.emitted_quality
        policy = self._config.policy
        if policy == "periodic":
            return improved and (record.emitted_at is None or now - record.emitted_at >= self._config.period)
        if policy == "early":
            if best.quality.score < self._config.threshold:
                return False
            return record.emitted_quality is None or (
                best.quality.score >= record.emitted_quality + self._config.margin
            )
        return False

    def _cut(self, image: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
        if self._crop.mode == "aligned":
            return align_face(image, landmarks, box, size=112)
        return loose_crop(image, box, self._crop.margin, self._crop.max_size)

    def _jpeg(self, image: np.ndarray) -> bytes:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._crop.jpeg_quality])
        if not ok:
            raise ValueError(f"JPEG encoding of a {image.shape} image failed")
        return bytes(jpeg.tobytes())

    def _event(self, track_id: int, record: _TrackRecord, kind: EventKind) -> BestShot:
        best = record.best
        if best is None:
            raise ValueError("an event needs a best sighting")
        seq = record.events
        record.events += 1
        record.emitted_quality = best.quality.score
        return BestShot(
            event_id=f"{self._source}:{self.run_id}:{track_id}:{seq}",
            run_id=self.run_id,
            kind=kind,
            source=self._source,
            track_id=track_id,
            frame_index=best.frame_index,
            pts=best.pts,
            captured_at=best.captured_at,
            first_seen=record.first_seen,
            last_seen=record.last_seen,
            box=_box_tuple(best.box),
            first_frame_index=record.first_frame_index,
            first_box=record.first_box,
            landmarks=None if best.landmarks is None else tuple((float(x), float(y)) for x, y in best.landmarks),
            quality=best.quality.score,
            components=dict(best.quality.components),
            model=self._model,
            crop_jpeg=self._jpeg(best.crop),
            frame_jpeg=None if best.frame is None else self._jpeg(best.frame),
            sightings=record.sightings,
            decided_at=datetime.now(UTC),
        )
