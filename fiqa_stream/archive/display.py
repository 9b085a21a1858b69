"""What ``index`` and ``search`` show a person: progress while indexing, summaries, results."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from fiqa_stream.archive.analysis import VideoJob, VideoResult
from fiqa_stream.archive.database import ShotRow
from fiqa_stream.archive.indexer import IndexSummary
from fiqa_stream.archive.report import clock
from fiqa_stream.cli.display import plain, table_console
from fiqa_stream.logs import escape_controls


class IndexProgress:
    """An overall bar (videos, frames/s, videos/h, ETA) and one bar per video in work.

    The overall bar counts videos, each in-work video by the share of its frames
    decoded, so the rate and ETA move smoothly while long videos are analysed.
    """

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self._console,
        )
        self._overall: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}
        self._names: dict[str, str] = {}
        self._fractions: dict[str, float] = {}
        self._finished = 0
        self._frames = 0
        self._started = time.monotonic()

    def __enter__(self) -> IndexProgress:
        if self._enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._progress.stop()

    def planned(self, jobs: Sequence[VideoJob], skipped: int) -> None:
        self._names = {job.fingerprint: escape_controls(Path(job.path).name) for job in jobs}
        if self._enabled:
            note = f" ({skipped} already indexed)" if skipped else ""
            self._overall = self._progress.add_task(f"videos{note}", total=len(jobs), rate="")
            self._started = time.monotonic()

    def started(self, job: VideoJob) -> None:
        if self._enabled and job.fingerprint not in self._tasks:
            self._tasks[job.fingerprint] = self._progress.add_task(f"  {self._names[job.fingerprint]}", total=None,
                                                                   rate="")

    def progress(self, fingerprint: str, decoded: int, expected: int | None) -> None:
        if not self._enabled or fingerprint not in self._tasks:
            return
        self._progress.update(self._tasks[fingerprint], completed=decoded, total=expected, rate="frames")
        if expected:
            self._fractions[fingerprint] = min(1.0, decoded / expected)
        self._refresh()

    def finished(self, result: VideoResult) -> None:
        fingerprint = result.outcome.fingerprint
        self._finished += 1
        self._frames += result.outcome.frames_analysed
        self._fractions.pop(fingerprint, None)
        if self._enabled and fingerprint in self._tasks:
            self._progress.remove_task(self._tasks.pop(fingerprint))
        self._refresh()

    def _refresh(self) -> None:
        if not self._enabled or self._overall is None:
            return
        elapsed = max(1e-6, time.monotonic() - self._started)
        rate = f"{self._frames / elapsed:.1f} frames/s, {3600 * self._finished / elapsed:.0f} videos/h"
        self._progress.update(self._overall, completed=self._finished + sum(self._fractions.values()), rate=rate)


_WITHOUT_SHOTS_SHOWN = 10


def print_index_summary(summary: IndexSummary, quiet: bool) -> None:
    if quiet:
        return
    console = Console()
    for _, error in summary.failures:
        console.print(Text("failed: ", style="red") + plain(error), highlight=False, soft_wrap=True)
    for path, why in summary.without_shots[:_WITHOUT_SHOTS_SHOWN]:
        console.print(plain(path) + Text(": 0 best shots; faces without one: ") + plain(why),
                      highlight=False, soft_wrap=True)
    if len(summary.without_shots) > _WITHOUT_SHOTS_SHOWN:
        console.print(Text(f"... and {len(summary.without_shots) - _WITHOUT_SHOTS_SHOWN} more videos with faces "
                           "but no best shot (the report says why for each)"), highlight=False, soft_wrap=True)
    interrupted = " (interrupted: rerun to finish)" if summary.interrupted else ""
    links = (f"; {summary.links_skipped} link(s) out of the given folders skipped (--follow-links to index them)"
             if summary.links_skipped else "")
    console.print(
        Text(f"{summary.found} videos: {summary.done} indexed, {summary.partial} partly (damaged), "
             f"{summary.failed} failed, {summary.skipped} already indexed, {len(summary.duplicates)} duplicates, "
             f"{summary.unfinished} left{interrupted}; {summary.frames_analysed} frames in {summary.seconds:.1f} s "
             f"({summary.fps:.1f} frames/s, {summary.videos_per_hour:.0f} videos/h), {summary.best_shots} best "
             "shots → ") + plain(summary.out) + Text(links),
        highlight=False, soft_wrap=True,
    )


def shot_json(shot: ShotRow, folder: Path) -> dict[str, Any]:
    return {
        "video": shot.video_path, "fingerprint": shot.fingerprint, "track_id": shot.track_id,
        "event_id": shot.event_id, "time": shot.time, "frame_index": shot.frame_index,
        "first_seen": shot.first_seen, "last_seen": shot.last_seen, "sightings": shot.sightings,
        "box": list(shot.box), "landmarks": shot.landmarks, "quality": shot.quality,
        "components": shot.components, "model": shot.model, "crop": str(folder / shot.crop),
    }


def print_shots(shots: list[ShotRow], folder: Path) -> None:
    console = table_console()
    if not shots:
        console.print("no best shot matches", highlight=False)
        return
    names = sorted({name for shot in shots for name in shot.components})
    table = Table(title=f"{len(shots)} best shots", title_justify="left")
    for column in ("video", "time", "track", "quality", *names, "crop"):
        table.add_column(column, justify="left" if column in ("video", "crop") else "right")
    for shot in shots:
        table.add_row(
            plain(Path(shot.video_path).name), clock(shot.time), str(shot.track_id), f"{shot.quality:.3f}",
            *(f"{shot.components[n]:.2f}" if n in shot.components else "" for n in names), plain(folder / shot.crop),
        )
    console.print(table)


def progress_enabled(quiet: bool, json_logs: bool) -> bool:
    return not quiet and not json_logs and sys.stderr.isatty()
