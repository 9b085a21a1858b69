"""Archive indexing, the per-video part: finding videos, fingerprinting them, and
analysing one video with the ordinary pipeline into a ``VideoOutcome``: coarse to fine
(``coarse.py`` finds the stretches with faces, the pipeline analyses only those) or whole.

Everything here runs wherever a video is analysed (a local worker process or a Ray
task); nothing here touches the index, so results travel back to the one process that
writes it.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import resource
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from fiqa_stream.archive.coarse import coarse_pass, fine_frames
from fiqa_stream.archive.database import ShotRecord, VideoOutcome, VideoStatus, video_key
from fiqa_stream.config import Config
from fiqa_stream.models import Models
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import frame_too_large, still_image
from fiqa_stream.stream.drops import explain
from fiqa_stream.stream.file_source import FILE_OPEN_OPTIONS, scan_timeline
from fiqa_stream.stream.pipeline import Pipeline, SourceStats
from fiqa_stream.stream.sources import VIDEO_SUFFIXES
from fiqa_stream.types import BestShot, EventKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VideoFile:
    path: Path
    size: int
    mtime_ns: int


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def _walk(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def _glob_root(pattern: Path) -> Path:
    """The folder a glob searches: its parts before the first one with a wildcard."""
    parts = pattern.parts
    fixed = next((i for i, part in enumerate(parts) if _is_glob(part)), len(parts))
    return Path(*parts[:fixed]) if fixed else Path()


@dataclass(frozen=True, slots=True)
class FoundVideos:
    """What ``find_videos`` found: the files, one error per input that gave nothing, and
    the links it did not follow out of the roots."""

    files: list[VideoFile]
    errors: list[str]
    links_skipped: list[Path]


def find_videos(inputs: Sequence[str], follow_links: bool = False) -> FoundVideos:
    """Expand files, globs and folders (searched recursively for video suffixes) into
    distinct regular files, in input order. Named files are taken whatever their suffix.

    The folders and globs given are the roots: a file they hold that is a symbolic link
    (or lies below one) whose target is outside every root is skipped and logged, unless
    ``follow_links``, so an archive cannot make the indexer read, say, ``/etc/passwd``.
    A file named on its own is taken wherever it leads.
    """
    found: list[tuple[Path, bool]] = []  # (path, must lie inside a root)
    roots: list[Path] = []
    errors: list[str] = []
    for text in inputs:
        path = Path(text).expanduser()
        if _is_glob(text):
            roots.append(_glob_root(path).resolve())
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            files = [m for m in matches if m.is_file()] + [f for m in matches if m.is_dir() for f in _walk(m)]
            if not files:
                errors.append(f"{text}: no file matches this pattern")
            found.extend((f, True) for f in files)
        elif path.is_dir():
            roots.append(path.resolve())
            videos = _walk(path)
            if not videos:
                errors.append(f"{text}: folder holds no video files")
            found.extend((v, True) for v in videos)
        elif path.is_file():
            found.append((path, False))
        else:
            errors.append(f"{text}: file not found" if not path.exists() else f"{text}: not a regular file")
    seen: set[Path] = set()
    result: list[VideoFile] = []
    skipped: list[Path] = []
    for path, inside_only in found:
        resolved = path.resolve()
        if inside_only and not follow_links and not any(resolved.is_relative_to(root) for root in roots):
            log.warning("%s: links outside the archive roots; skipped (--follow-links to allow)", path)
            skipped.append(path)
            continue
        if resolved in seen:
            continue
        seen.add(resolved)
        stat = resolved.stat()
        result.append(VideoFile(resolved, stat.st_size, stat.st_mtime_ns))
    return FoundVideos(result, errors, skipped)


def fingerprint(path: Path) -> str:
    """BLAKE2b-128 of the whole content, hex: the same bytes anywhere give the same key."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class VideoJob:
    fingerprint: str
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class PassCounts:
    """What one pass over a video did: ``full`` (the whole video through the pipeline), or
    ``coarse`` (detection on a few frames) then ``fine`` (the stretches with faces)."""

    name: str
    decoded: int
    analysed: int
    seconds: float


@dataclass(frozen=True, slots=True)
class VideoResult:
    """An outcome plus where and how it was made. ``interrupted`` outcomes are not stored."""

    outcome: VideoOutcome
    path: str
    worker: str
    peak_rss_mb: float
    interrupted: bool = False
    passes: tuple[PassCounts, ...] = ()


class _Collector:
    """The sink of a one-video run: keeps the final events in memory."""

    name = "index"

    def __init__(self) -> None:
        self.events: list[BestShot] = []

    def publish(self, events: Sequence[BestShot]) -> None:
        self.events.extend(e for e in events if e.kind is EventKind.FINAL)

    def close(self) -> None:
        pass


def video_config(base: Config, job: VideoJob, spans: list[tuple[float, float]] | None = None) -> Config:
    """The run config of one video: the base config with this file as its only source,
    decoding only ``spans`` (media seconds) when given.

    Sampling (``every``, ``fps``), ``queue_size`` and ``max_frame_pixels`` come from the base
    config's first source; metrics and the process fan-out of ``run`` are off (the indexer
    fans out itself)."""
    template = base.sources[0]
    source = SourceConfig(url=job.path, id=video_key(job.fingerprint), every=template.every, fps=template.fps,
                          queue_size=template.queue_size, max_frame_pixels=template.max_frame_pixels, spans=spans)
    return base.model_copy(update={
        "sources": [source],
        "metrics": base.metrics.model_copy(update={"enabled": False}),
        "pipeline": base.pipeline.model_copy(update={"workers": 1, "progress": "off"}),
    })


def _probe(path: str) -> tuple[float | None, int, int, float | None]:
    """Duration (s), width, height and frame rate; raises ``av.error.FFmpegError``/``ValueError``."""
    with av.open(path, options=FILE_OPEN_OPTIONS) as container:
        if not container.streams.video:
            raise ValueError("holds no video stream")
        stream = container.streams.video[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        rate = float(stream.average_rate) if stream.average_rate else None
        return duration, stream.codec_context.width, stream.codec_context.height, rate


def _describe(error: Exception) -> str:
    if isinstance(error, av.error.FFmpegError):
        return error.strerror or str(error)
    return str(error)


def _judge(decoded: int, error: str | None) -> tuple[VideoStatus, str | None]:
    # A file that holds fewer frames than it declares fails its source (``missing_frames``):
    # the source alone knows which frames it left undecoded on purpose.
    if error is not None:
        return (VideoStatus.PARTIAL if decoded else VideoStatus.FAILED), error
    return VideoStatus.DONE, None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ProgressFn = Callable[[str, int, int | None], None]


def analyse_video(
    job: VideoJob,
    base_config: Config,
    models: Models,
    stop: threading.Event,
    worker: str,
    on_progress: ProgressFn | None = None,
) -> VideoResult:
    """Run the pipeline over one video, coarse to fine when ``index.coarse`` and the file
    allows it. Never raises for a bad file: its error is in the outcome."""
    started = time.perf_counter()
    passes: list[PassCounts] = []

    def result(status: VideoStatus, error: str | None, **fields: Any) -> VideoResult:
        outcome = VideoOutcome(job.fingerprint, status, error, seconds=time.perf_counter() - started, **fields)
        return VideoResult(outcome, job.path, worker, peak_rss_mb(), passes=tuple(passes))

    def interrupted() -> VideoResult:
        return VideoResult(VideoOutcome(job.fingerprint, VideoStatus.PENDING, None), job.path, worker,
                           peak_rss_mb(), interrupted=True)

    if job.size == 0:
        return result(VideoStatus.FAILED, f"{job.path}: empty file (0 bytes)")
    if (photo := still_image(Path(job.path))) is not None:
        return result(VideoStatus.FAILED, f"{job.path}: {photo}")
    try:
        duration, width, height, rate = _probe(job.path)
    except (av.error.FFmpegError, OSError, ValueError) as error:
        return result(VideoStatus.FAILED, f"{job.path}: cannot open as video: {_describe(error)}")
    fields: dict[str, Any] = {"duration": duration, "width": width, "height": height, "fps": rate}
    too_large = frame_too_large(width, height, base_config.sources[0].max_frame_pixels)
    if too_large is not None:
        return result(VideoStatus.FAILED, f"{job.path}: {too_large}", **fields)

    path = Path(job.path)
    # Without a timeline the frames could not keep their indexes: such files go whole.
    timeline = scan_timeline(path) if base_config.index.coarse else None
    if timeline is not None and timeline.duration() < base_config.index.min_seconds:
        timeline = None
    spans: list[tuple[float, float]] | None = None
    coarse_error: str | None = None
    coarse_work = (0, 0)
    fine_total: int | None = None
    if timeline is not None:
        frames = len(timeline)

        def coarse_progress(position: int) -> None:
            if on_progress is not None:
                on_progress(job.fingerprint, position, frames)

        coarse = coarse_pass(path, video_key(job.fingerprint), base_config, models.detector, timeline, stop,
                             coarse_progress)
        if coarse.interrupted:
            return interrupted()
        passes.append(PassCounts("coarse", coarse.decoded, coarse.detected, time.perf_counter() - started))
        coarse_error, coarse_work = coarse.error, (coarse.decoded, coarse.detected)
        if not coarse.spans:
            status, problem = _judge(coarse.decoded, coarse_error)
            return result(status, problem, frames_decoded=coarse.decoded, frames_analysed=coarse.detected,
                          shots=(), **fields)
        spans, fine_total = coarse.spans, fine_frames(timeline, coarse.spans)
    collector = _Collector()

    def progress(sources: list[SourceStats]) -> None:
        if on_progress is not None and sources:
            on_progress(job.fingerprint, sources[0].decoded, sources[0].expected if spans is None else fine_total)

    config = video_config(base_config, job, spans)
    pipeline = Pipeline(
        config, models=models, sinks=[collector], on_progress=progress, progress_interval=0.5,
    )
    fine_started = time.perf_counter()
    summary = pipeline.run(stop)
    if summary.interrupted:
        return interrupted()
    if not summary.sources:
        return result(VideoStatus.FAILED, summary.failures[0] if summary.failures else "no source", **fields)
    stats = summary.sources[0]
    passes.append(PassCounts("full" if spans is None else "fine", stats.decoded, stats.analysed,
                             time.perf_counter() - fine_started))
    failures = summary.failures + summary.sink_failures
    status, problem = _judge(stats.decoded + coarse_work[0],
                             coarse_error or stats.error or (failures[0] if failures else None))
    shots = tuple(ShotRecord.of(e) for e in sorted(collector.events, key=lambda e: (e.track_id, e.event_id)))
    return result(status, problem, frames_decoded=stats.decoded + coarse_work[0],
                  frames_analysed=stats.analysed + coarse_work[1],
                  shots=shots if status is not VideoStatus.FAILED else (),
                  dropped_faces=explain(stats.drops, config, stats.widest_small_face) or None, **fields)


@dataclass(frozen=True, slots=True)
class Started:
    """A runner handed ``fingerprint`` to ``worker``."""

    fingerprint: str
    worker: str


@dataclass(frozen=True, slots=True)
class Progress:
    fingerprint: str
    decoded: int
    expected: int | None


@dataclass(frozen=True, slots=True)
class Finished:
    result: VideoResult


RunnerMessage = Started | Progress | Finished
