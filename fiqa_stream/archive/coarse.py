"""Coarse-to-fine indexing, its first pass: where in a video faces are.

The coarse pass decodes a video cheaply, key frames alone (the decoder skips every
other frame; of dense key frames only as many as keep the samples ``key_frame_gap``
apart) when they come often enough, else ``coarse_fps`` frames per second, and only
detects faces in those frames: no tracking, scoring or selection. Each frame with a face
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

from fiqa_stream.config import Config
from fiqa_stream.detectors import Detector
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import Timeline
from fiqa_stream.stream.file_source import FileSource
from fiqa_stream.stream.plausibility import not_nested, plausible
from fiqa_stream.stream.source_base import SourceEnd, SourceItem
from fiqa_stream.types import Frame


@dataclass(frozen=True, slots=True)
class CoarsePass:
    """What the coarse pass found and what it cost.

    Attributes:
        spans: ``[start, end]`` media seconds to analyse, in order, joined; empty: no face.
        decoded: frames decoded.
        detected: frames detected (the coarse samples).
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
    end: SourceEnd | None = None
    batch: list[Frame] = []
    last_progress = 0.0
    source.start()
    try:
        while end is None and not stop.is_set():
            with wakeup:
                while not stop.is_set() and not len(buffer):
                    wakeup.wait(0.1)
            while len(batch) < config.pipeline.batch_frames:
                item = buffer.get_nowait()
                if item is None:
                    break
                if isinstance(item, SourceEnd):
                    end = item
                    break
                if isinstance(item, Frame):
                    batch.append(item)
            if batch:
                for frame, found in zip(batch, detector.detect([f.image for f in batch]), strict=True):
                    faces = bool((plausible(found) & not_nested(found)).any())
                    samples.append((frame.pts if frame.pts is not None else 0.0, faces))
                batch = []
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
        detected=len(samples),
        with_faces=sum(1 for _, face in samples if face),
        key_frames=key_frames,
        widest_gap=max(b - a for a, b in zip(times, times[1:], strict=False)),
        error=None if end is None or end.error is None else str(end.error),
        interrupted=end is None,
    )


def fine_frames(timeline: Timeline, spans: Sequence[tuple[float, float]]) -> int:
    """The most frames the fine pass decodes: each span's, from the key frame before it."""
    return sum(last - timeline.key_before(first) + 1 for first, last in timeline.ranges(spans))
