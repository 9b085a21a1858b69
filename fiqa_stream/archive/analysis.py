"""Archive indexing, the per-video part: finding videos, fingerprinting them, and
analysing one video with the ordinary pipeline into a ``VideoOutcome``.

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

from fiqa_stream.archive.database import ShotRecord, VideoOutcome, VideoStatus, video_key
from fiqa_stream.config import Config
from fiqa_stream.models import Models
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import frame_too_large, missing_frames
from fiqa_stream.stream.drops import explain
from fiqa_stream.stream.file_source import FILE_OPEN_OPTIONS
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
class VideoResult:
    """An outcome plus where and how it was made. ``interrupted`` outcomes are not stored."""

    outcome: VideoOutcome
    path: str
    worker: str
    peak_rss_mb: float
    interrupted: bool = False


class _Collector:
    """The sink of a one-video run: keeps the final events in memory."""

    name = "index"

    def __init__(self) -> None:
        self.events: list[BestShot] = []

    def publish(self, events: Sequence[BestShot]) -> None:
        self.events.extend(e for e in events if e.kind is EventKind.FINAL)

    def close(self) -> None:
        pass


def video_config(base: Config, job: VideoJob) -> Config:
    """The run config of one video: the base config with this file as its only source.

    Sampling (``every``, ``fps``), ``queue_size`` and ``max_frame_pixels`` come from the base
    config's first source; metrics and the process fan-out of ``run`` are off (the indexer
    fans out itself)."""
    template = base.sources[0]
    source = SourceConfig(url=job.path, id=video_key(job.fingerprint), every=template.every, fps=template.fps,
                          queue_size=template.queue_size, max_frame_pixels=template.max_frame_pixels)
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


def _judge(stats: SourceStats, failures: list[str]) -> tuple[VideoStatus, str | None]:
    error = stats.error or (failures[0] if failures else None)
    if error is not None:
        return (VideoStatus.PARTIAL if stats.decoded else VideoStatus.FAILED), error
    shortfall = missing_frames(stats.decoded, stats.expected)
    if shortfall is not None:
        return VideoStatus.PARTIAL, f"{stats.path}: {shortfall}"
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
    """Run the pipeline over one video. Never raises for a bad file: its error is in the outcome."""
    started = time.perf_counter()

    def result(status: VideoStatus, error: str | None, **fields: Any) -> VideoResult:
        outcome = VideoOutcome(job.fingerprint, status, error, seconds=time.perf_counter() - started, **fields)
        return VideoResult(outcome, job.path, worker, peak_rss_mb())

    if job.size == 0:
        return result(VideoStatus.FAILED, f"{job.path}: empty file (0 bytes)")
    try:
        duration, width, height, rate = _probe(job.path)
    except (av.error.FFmpegError, OSError, ValueError) as error:
        return result(VideoStatus.FAILED, f"{job.path}: cannot open as video: {_describe(error)}")
    too_large = frame_too_large(width, height, base_config.sources[0].max_frame_pixels)
    if too_large is not None:
        return result(VideoStatus.FAILED, f"{job.path}: {too_large}", duration=duration, width=width, height=height,
                      fps=rate)
    collector = _Collector()

    def progress(sources: list[SourceStats]) -> None:
        if on_progress is not None and sources:
            on_progress(job.fingerprint, sources[0].decoded, sources[0].expected)

    config = video_config(base_config, job)
    pipeline = Pipeline(
        config, models=models, sinks=[collector], on_progress=progress, progress_interval=0.5,
    )
    summary = pipeline.run(stop)
    fields: dict[str, Any] = {"duration": duration, "width": width, "height": height, "fps": rate}
    if summary.interrupted:
        return VideoResult(VideoOutcome(job.fingerprint, VideoStatus.PENDING, None), job.path, worker,
                           peak_rss_mb(), interrupted=True)
    if not summary.sources:
        return result(VideoStatus.FAILED, summary.failures[0] if summary.failures else "no source", **fields)
    stats = summary.sources[0]
    status, problem = _judge(stats, summary.failures + summary.sink_failures)
    shots = tuple(ShotRecord.of(e) for e in sorted(collector.events, key=lambda e: (e.track_id, e.event_id)))
    return result(status, problem, frames_decoded=stats.decoded, frames_analysed=stats.analysed,
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
