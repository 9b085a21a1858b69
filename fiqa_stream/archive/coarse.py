"""Coarse-to-fine indexing, its first pass: where in a video faces are.

The coarse pass decodes a video cheaply, key frames alone (the decoder skips every
other frame; of dense key frames only as many as keep the samples ``key_frame_gap``
apart) when they come often enough, else ``coarse_fps`` frames per second, and only
detects faces in those frames: no tracking, scoring or selection. Most of a recording is
still: a sample is detected only when something moved since the samples before (the
``motion`` section's background model, ``stream/motion.py``), when a face was found in
the sample detected before (a face that stops moving is still there), and at least every
``index.still_interval`` seconds; a face cannot come into a picture where nothing
moves, so the samples not detected hold none. Each frame with a face
gives a stretch from the coarse frame before it to the one after it (the face may have
come and gone anywhere in between), widened by the analysed frames a track needs and a
margin; stretches closer than a lost track survives are joined, so no track a whole pass
would follow is cut. The pipeline then decodes and analyses only these stretches
(``SourceConfig.spans``), at the configured rate, as ``analysis.analyse_video`` runs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_stream.config import Config
from fiqa_stream.detectors import Detector
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import Timeline
from fiqa_stream.stream.file_source import FileSource
from fiqa_stream.stream.motion import MotionDetector
from fiqa_stream.stream.plausibility import not_nested, plausible
from fiqa_stream.stream.source_base import SourceEnd, SourceItem
from fiqa_stream.types import Frame


@dataclass(frozen=True, slots=True)
class CoarsePass:
    """What the coarse pass found and what it cost.

    Attributes:
        spans: ``[start, end]`` media seconds to analyse, in order, joined; empty: no face.
        decoded: frames decoded (the coarse samples).
        detected: samples detected (the others were still).
        with_faces: samples with at least one face.
        key_frames: whether key frames alone were decoded (else ``coarse_fps``).
        widest_gap: the longest time between two samples, s.
        error: why decoding stopped early, or None.
        interrupted: ``stop`` was set before the end.
    """

    spans: list[tuple[float, float]]
    decoded: int
    detected: int
    with_faces: int
    key_frames: bool
    widest_gap: float
    error: str | None
    interrupted: bool


def analysed_rate(config: Config, timeline: Timeline) -> float:
    """Frames per second the fine pass analyses: ``fps``, or the file's rate over ``every``."""
    source = config.sources[0]
    duration = timeline.duration()
    rate = (len(timeline) - 1) / duration if duration > 0 else 25.0
    return min(source.fps, rate) if source.fps else rate / source.every


def face_spans(samples: Sequence[tuple[float, bool]], end: float, widen: float,
               join: float) -> list[tuple[float, float]]:
    """The stretches to analyse, from ``(time, has a face)`` coarse samples in time order.

    A face seen at one sample may have been there since just after the sample before and
    until just before the one after; its stretch runs between those two, widened by
    ``widen`` seconds on both sides and clipped to ``[0, end]``. Stretches at most ``join``
    seconds apart become one.
    """
    spans: list[tuple[float, float]] = []
    for number, (seen, face) in enumerate(samples):
        if not face:
            continue
        before = samples[number - 1][0] if number > 0 else 0.0
        after = samples[number + 1][0] if number + 1 < len(samples) else end
        start, stop = max(0.0, min(before, seen) - widen), min(end, max(after, seen) + widen)
        if spans and start - spans[-1][1] <= join:
            spans[-1] = (spans[-1][0], max(spans[-1][1], stop))
        else:
            spans.append((start, stop))
    return spans


class _StillGate:
    """Which coarse samples are worth a detection (see the module's docstring)."""

    def __init__(self, config: Config) -> None:
        self._motion = MotionDetector(config.motion) if config.index.coarse_motion else None
        self._interval = config.index.still_interval
        self._face = False
        self._last: float | None = None

    def wants(self, seconds: float, image: np.ndarray) -> bool:
        if self._motion is None:
            return True
        # Observed always: the background learns from every sample.
        moved = self._motion.observe(image)
        return (moved.whole or len(moved.boxes) > 0 or self._face or self._last is None
                or seconds - self._last >= self._interval)

    def detected(self, seconds: float, face: bool) -> None:
        self._face, self._last = face, seconds


def coarse_pass(path: Path, source_id: str, config: Config, detector: Detector, timeline: Timeline,
                stop: threading.Event, on_progress: Callable[[int], None] | None = None) -> CoarsePass:
    """Detect faces on a few frames of ``path`` and return the stretches to analyse.

    ``on_progress`` hears how many frames of the file are behind the decoder.
    """
    settings = config.index
    template = config.sources[0]
    key_frames = 0 < timeline.key_gap() <= settings.key_frame_gap
    source_config = SourceConfig(url=str(path), id=source_id, fps=None if key_frames else settings.coarse_fps,
                                 queue_size=template.queue_size, max_frame_pixels=template.max_frame_pixels)
    wakeup = threading.Condition()
    buffer: FrameBuffer[SourceItem] = FrameBuffer(template.queue_size, "block", wakeup)
    source = FileSource(source_id, path, source_config, buffer, stop,
                        key_frame_gap=settings.key_frame_gap if key_frames else None,
                        max_width=settings.coarse_width, timeline=timeline)
    samples: list[tuple[float, bool]] = []
    gate = _StillGate(config)
    detected = 0
    end: SourceEnd | None = None
    last_progress = 0.0
    source.start()
    try:
        while end is None and not stop.is_set():
            with wakeup:
                while not stop.is_set() and not len(buffer):
                    wakeup.wait(0.1)
            # One sample at a time: whether the next is detected depends on this one's faces.
            while (item := buffer.get_nowait()) is not None:
                if isinstance(item, SourceEnd):
                    end = item
                    break
                if not isinstance(item, Frame):
                    continue
                seconds = item.pts if item.pts is not None else 0.0
                face = False
                if gate.wants(seconds, item.image):
                    (found,) = detector.detect([item.image])
                    face = bool((plausible(found) & not_nested(found)).any())
                    gate.detected(seconds, face)
                    detected += 1
                samples.append((seconds, face))
            now = time.perf_counter()
            if on_progress is not None and (now - last_progress >= 0.5 or end is not None):
                last_progress = now
                on_progress(source.position)
    finally:
        source.join(timeout=5.0)
    last = timeline.seconds(len(timeline) - 1)
    rate = analysed_rate(config, timeline)
    widen = settings.margin + (config.tracker.min_hits + config.selection.min_track_length) / rate
    # A whole pass ends a track lost for lost_frames; nearer stretches may share one.
    join = config.tracker.lost_frames / rate
    times = [0.0, *(t for t, _ in samples), last]
    return CoarsePass(
        spans=face_spans(samples, last, widen, join),
        decoded=source.decoded,
        detected=detected,
        with_faces=sum(1 for _, face in samples if face),
        key_frames=key_frames,
        widest_gap=max(b - a for a, b in zip(times, times[1:], strict=False)),
        error=None if end is None or end.error is None else str(end.error),
        interrupted=end is None,
    )


def fine_frames(timeline: Timeline, spans: Sequence[tuple[float, float]]) -> int:
    """The most frames the fine pass decodes: each span's, from the key frame before it."""
    return sum(last - timeline.key_before(first) + 1 for first, last in timeline.ranges(spans))
