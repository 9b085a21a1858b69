"""What the command line shows a person: progress while running, a summary after.

User strings (paths, URLs, ids, error messages) reach rich only as ``Text`` built by
``plain``: never read as markup or emoji codes, control characters escaped.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from fiqa_stream.config import Config
from fiqa_stream.logs import escape_controls
from fiqa_stream.stream.drops import explain
from fiqa_stream.stream.pipeline import RunSummary, SourceStats


def plain(text: object, style: str = "") -> Text:
    """``text`` as rich prints it verbatim: a ``[/]`` in a path is not markup, ``:x:`` not an
    emoji, and a newline or terminal escape in a name is shown escaped."""
    return Text(escape_controls(str(text)), style=style)


class ProgressDisplay:
    """Per-source progress bars on stderr; off when stderr is not a terminal (mode auto)."""

    def __init__(self, mode: str) -> None:
        self._enabled = mode == "on" or (mode == "auto" and sys.stderr.isatty())
        self._progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[faces]} faces, {task.fields[shots]} best shots"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressDisplay:
        if self._enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._progress.stop()

    def update(self, sources: list[SourceStats]) -> None:
        if not self._enabled:
            return
        for stats in sources:
            if stats.id not in self._tasks:
                self._tasks[stats.id] = self._progress.add_task(stats.id, total=None, faces=0, shots=0)
            total = stats.expected if not stats.finished else stats.decoded
            self._progress.update(
                self._tasks[stats.id], completed=stats.decoded, total=total,
                faces=stats.faces, shots=stats.best_shots,
            )


def print_summary(summary: RunSummary, destinations: list[str], config: Config) -> None:
    """The table of sources and the totals, then, per source, the faces that yielded no best
    shot and why. A failed source's row says "failed"; its error is not repeated here: the
    run logged it, once, when it happened."""
    console = table_console()
    title = "fiqa-stream run: interrupted" if summary.interrupted else "fiqa-stream run"
    table = Table(title=title, title_justify="left")
    for column in ("source", "frames analysed", "faces", "tracks", "best shots", "status"):
        table.add_column(column, justify="left" if column in ("source", "status") else "right")
    unfinished = "interrupted" if summary.interrupted else "stopped"
    for s in summary.sources:
        status = Text("failed", style="red") if s.error else Text("done" if s.finished else unfinished)
        table.add_row(plain(s.id), str(s.analysed), str(s.faces), str(s.tracks), str(s.best_shots), status)
    console.print(table)
    interrupted = " (interrupted, open tracks flushed)" if summary.interrupted else ""
    console.print(
        Text(f"{summary.frames_analysed} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
             f"{sum(s.faces for s in summary.sources)} faces, {sum(s.tracks for s in summary.sources)} tracks, "
             f"{summary.best_shots} best shots → ") + plain(", ".join(destinations)) + Text(interrupted),
        highlight=False, soft_wrap=True,
    )
    gated = [s for s in summary.sources if s.detection_skipped or s.detection_on_regions]
    if gated:
        analysed = sum(s.analysed for s in gated)
        skipped = sum(s.detection_skipped for s in gated)
        regions = sum(s.detection_on_regions for s in gated)
        console.print(Text(f"motion gating: of {analysed} analysed frames, {skipped} needed no detection and "
                           f"{regions} were detected on moving regions only"), highlight=False, soft_wrap=True)
    if summary.overloaded_seconds:
        console.print(Text(f"analysis could not keep up with the live sources for {summary.overloaded_seconds:.0f} s; "
                           "every source got an even share", style="yellow"), highlight=False, soft_wrap=True)
    for s in summary.sources:
        why = explain(s.drops, config, s.widest_small_face)
        if why:
            cuts = f" ({s.scene_cuts} scene cuts)" if s.scene_cuts else ""
            console.print(plain(s.id) + Text(f": {s.best_shots} best shots{cuts}; faces without one: {why}"),
                          highlight=False, soft_wrap=True)
    failed = [f"{n} {what}" for n, what in ((len(summary.failures), "source(s)"),
                                            (len(summary.sink_failures), "sink error(s)")) if n]
    if failed:
        console.print(Text(f"failed: {', '.join(failed)} (each error is in the log above)", style="red"),
                      highlight=False, soft_wrap=True)


def table_console() -> Console:
    """Standard output for tables: piped, there is no terminal width to respect, so every
    row is kept whole instead of squeezed into 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=240)


def print_scores(results: list[dict[str, Any]]) -> None:
    console = table_console()
    for result in results:
        if result["error"]:
            console.print(plain(result["error"], style="red"), highlight=False, soft_wrap=True)
            continue
        console.print(plain(result["image"]) + Text(f": {len(result['faces'])} face(s), model {result['model']}"),
                      highlight=False, soft_wrap=True)
        table = Table()
        table.add_column("face", justify="right")
        table.add_column("box", no_wrap=True)
        table.add_column("quality", justify="right")
        names = list(result["faces"][0]["components"]) if result["faces"] else []
        for name in names:
            table.add_column(name, justify="right")
        for n, face in enumerate(result["faces"], 1):
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            table.add_row(str(n), box, f"{face['quality']:.3f}", *(f"{face['components'][k]:.3f}" for k in names))
        console.print(table)
