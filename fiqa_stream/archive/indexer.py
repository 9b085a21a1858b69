"""Archive indexing, the whole job: plan which videos need work, run them (local worker
processes or Ray), and store each outcome as it arrives.

Resuming: a video is keyed by its content fingerprint. Videos whose content is already
indexed (done, or partial for a damaged file) are skipped; pending, running (left by a
killed run) and failed ones are analysed again, replacing whatever an earlier attempt
left. Only this process writes the index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fiqa_stream.archive.analysis import (
    Finished,
    Progress,
    RunnerMessage,
    Started,
    VideoFile,
    VideoJob,
    VideoResult,
    find_videos,
    fingerprint,
)
from fiqa_stream.archive.database import FINISHED, ArchiveIndex, VideoStatus
from fiqa_stream.config import Config
from fiqa_stream.errors import ConfigError

log = logging.getLogger(__name__)


class Runner(Protocol):
    def run(self, jobs: list[VideoJob], stop: threading.Event) -> Iterator[RunnerMessage]: ...


class IndexObserver(Protocol):
    """What a progress display hears about an indexing run."""

    def planned(self, jobs: Sequence[VideoJob], skipped: int) -> None: ...

    def started(self, job: VideoJob) -> None: ...

    def progress(self, fingerprint: str, decoded: int, expected: int | None) -> None: ...

    def finished(self, result: VideoResult) -> None: ...


@dataclass(slots=True)
class IndexSummary:
    """The outcome of one ``index`` run, for the closing summary and the exit code."""

    out: Path
    found: int = 0
    skipped: int = 0
    duplicates: list[str] = field(default_factory=list)
    done: int = 0
    partial: int = 0
    failed: int = 0
    unfinished: int = 0
    frames_analysed: int = 0
    #: Frames decoded and analysed (coarse: detected) by each kind of pass: ``full``, or
    #: ``coarse`` and ``fine`` (``analysis.PassCounts``), over the videos analysed.
    decoded_by_pass: Counter[str] = field(default_factory=Counter)
    analysed_by_pass: Counter[str] = field(default_factory=Counter)
    best_shots: int = 0
    seconds: float = 0.0
    analysis_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Videos whose faces all went without a best shot, and why.
    without_shots: list[tuple[str, str]] = field(default_factory=list)
    links_skipped: int = 0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def processed(self) -> int:
        return self.done + self.partial + self.failed

    @property
    def videos_per_hour(self) -> float:
        return 3600 * self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def fps(self) -> float:
        return self.frames_analysed / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def config_hash(config: Config) -> str:
    """What decides the results: everything but the sources, sinks and the display."""
    relevant = config.model_dump(mode="json", exclude={"sources", "sinks", "pipeline", "metrics", "logging"})
    relevant["sampling"] = config.sources[0].model_dump(mode="json", include={"every", "fps"})
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


class Indexer:
    """Indexes videos into one output folder."""

    def __init__(self, config: Config, out: Path, runner: Runner, observer: IndexObserver | None = None,
                 *, follow_links: bool = False) -> None:
        self._config = config
        self._out = out
        self._runner = runner
        self._observer = observer
        self._follow_links = follow_links

    def run(self, inputs: Sequence[str], stop: threading.Event) -> IndexSummary:
        started = time.perf_counter()
        found = find_videos(inputs, self._follow_links)
        files, input_errors = found.files, found.errors
        if not files:
            raise ConfigError("index: no video found: " + "; ".join(input_errors or [", ".join(inputs)]))
        summary = IndexSummary(self._out.resolve(), found=len(files), links_skipped=len(found.links_skipped))
        summary.failures.extend(("(input)", error) for error in input_errors)
        with ArchiveIndex(self._out) as index:
            self._check_config(index)
            jobs, covered = self._plan(index, files, summary)
            if self._observer:
                self._observer.planned(jobs, summary.skipped)
            results = {r.outcome.fingerprint: r for r in self._execute(index, jobs, stop, summary)}
            summary.unfinished = sum(1 for job in jobs if job.fingerprint not in results)
            for fp in covered:
                row = index.video(fp)
                if row is not None and row.status in (VideoStatus.FAILED, VideoStatus.PARTIAL):
                    summary.failures.append((row.path, row.error or row.status.value))
        summary.interrupted = stop.is_set()
        summary.seconds = time.perf_counter() - started
        return summary

    def _check_config(self, index: ArchiveIndex) -> None:
        current, stored = config_hash(self._config), index.meta("config_hash")
        if stored is not None and stored != current and index.finished_count():
            # The stored hash stays, so every later run over this mixed index warns too.
            log.warning("%s: indexed before with different analysis settings; videos already indexed keep their "
                        "results (index into a new folder to redo them)", index.path)
            return
        index.set_meta("config_hash", current)

    def _plan(self, index: ArchiveIndex, files: list[VideoFile],
              summary: IndexSummary) -> tuple[list[VideoJob], list[str]]:
        jobs: list[VideoJob] = []
        covered: list[str] = []
        seen: dict[str, str] = {}
        for file in files:
            path = str(file.path)
            try:
                fp = index.cached_fingerprint(path, file.size, file.mtime_ns) or fingerprint(file.path)
            except OSError as error:
                summary.failures.append((path, f"{path}: cannot read: {error.strerror}"))
                continue
            if fp in seen:
                summary.duplicates.append(f"{path} (same content as {seen[fp]})")
                continue
            seen[fp] = path
            covered.append(fp)
            row = index.video(fp)
            if row is not None and row.status in FINISHED:
                summary.skipped += 1
                if row.path != path and not Path(row.path).exists():
                    index.move(fp, path, file.mtime_ns)
                continue
            index.upsert_pending(fp, path, file.size, file.mtime_ns)
            jobs.append(VideoJob(fp, path, file.size))
        log.info("%d videos found: %d to index, %d already indexed, %d duplicates",
                 len(files), len(jobs), summary.skipped, len(summary.duplicates))
        return jobs, covered

    def _execute(self, index: ArchiveIndex, jobs: list[VideoJob], stop: threading.Event,
                 summary: IndexSummary) -> Iterator[VideoResult]:
        by_fingerprint = {job.fingerprint: job for job in jobs}
        observer = self._observer
        for message in self._runner.run(jobs, stop):
            if isinstance(message, Started):
                index.set_status(message.fingerprint, VideoStatus.RUNNING)
                if observer:
                    observer.started(by_fingerprint[message.fingerprint])
            elif isinstance(message, Progress):
                if observer:
                    observer.progress(message.fingerprint, message.decoded, message.expected)
            elif isinstance(message, Finished):
                result = message.result
                outcome = result.outcome
                if result.interrupted:
                    index.set_status(outcome.fingerprint, VideoStatus.PENDING)
                    continue
                index.record(outcome)
                self._count(result, summary)
                if observer:
                    observer.finished(result)
                yield result

    @staticmethod
    def _count(result: VideoResult, summary: IndexSummary) -> None:
        outcome = result.outcome
        passes = "; ".join(f"{p.name} pass {p.decoded} decoded, {p.analysed} analysed" for p in result.passes)
        for done in result.passes:
            summary.decoded_by_pass[done.name] += done.decoded
            summary.analysed_by_pass[done.name] += done.analysed
        if outcome.status is VideoStatus.DONE:
            summary.done += 1
            log.info("indexed %s: %d best shots, %d frames analysed in %.1f s (%s)", result.path, len(outcome.shots),
                     outcome.frames_analysed, outcome.seconds, passes or "no pass")
        elif outcome.status is VideoStatus.PARTIAL:
            summary.partial += 1
            log.warning("indexed %s partly (%d best shots): %s", result.path, len(outcome.shots), outcome.error)
        else:
            summary.failed += 1
            log.error("%s", outcome.error)
        summary.frames_analysed += outcome.frames_analysed
        summary.best_shots += len(outcome.shots)
        if not outcome.shots and outcome.dropped_faces:
            summary.without_shots.append((result.path, outcome.dropped_faces))
        summary.analysis_seconds += outcome.seconds
        if result.peak_rss_mb:
            summary.peak_rss_mb[result.worker] = max(summary.peak_rss_mb.get(result.worker, 0.0), result.peak_rss_mb)
