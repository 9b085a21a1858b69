"""The archive commands: ``index``, ``search`` and ``report``."""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fiqa_stream.cli.exits import Exit, install_stop_handlers
from fiqa_stream.errors import ConfigError

log = logging.getLogger("fiqa_stream")



def add_commands(commands: Any) -> None:
    """Add the archive commands to the ``fiqa-stream`` sub-parsers (handlers: ``HANDLERS``)."""
    index = commands.add_parser(
        "index", help="index folders of recorded video: best shots + a searchable SQLite index",
        description="Run the pipeline over every video (files, globs, folders searched recursively) and write "
        "best-shot crops and DIR/index.sqlite3. Rerunning skips videos already indexed (by content "
        "fingerprint) and redoes unfinished ones; killing it at any moment leaves a consistent index. Bad files "
        "are recorded with their error. exit status: 0 every video indexed; 1 some failed or are damaged; "
        "2 fatal; 130 interrupted (rerun to finish).",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="video file, glob or folder")
    index.add_argument("--out", type=Path, required=True, metavar="DIR", help="index folder (created when missing)")
    index.add_argument("--config", type=Path, help="YAML config: detector, scorer, tracker, selection, crop, index, "
                       "and sampling (every/fps) and max_frame_pixels of its first source; its sources and sinks "
                       "are not used")
    index.add_argument("--workers", type=int, metavar="N", help="worker processes (default: pipeline.workers)")
    index.add_argument("--coarse", action=argparse.BooleanOptionalAction, default=None,
                       help="coarse to fine: a first pass detects faces on key frames (or 2 frames/s) and only the "
                       "stretches around them are analysed; --no-coarse analyses every video whole (default: "
                       "config index.coarse, on)")
    index.add_argument("--ray", metavar="ADDRESS", help="run one task per video on this Ray cluster (e.g. "
                       "'auto' or 'HOST:6379'); paths must be readable at the same place on every node")
    index.add_argument("--follow-links", action="store_true", help="also index files of the folders and globs "
                       "given that are symbolic links to places outside them (skipped by default)")
    index.add_argument("--quiet", action="store_true", help="no progress and no summary; warnings and errors only")
    index.add_argument("--log-format", choices=("text", "json"), help="log format (default: config)")

    search = commands.add_parser(
        "search", help="find best shots in an archive index",
        description="Best shots of an index folder, best quality first, filtered by every option given.",
    )
    search.add_argument("folder", type=Path, metavar="DIR", help="index folder written by 'fiqa-stream index'")
    search.add_argument("--min-quality", type=float, metavar="Q", help="only shots of at least this quality (0-1)")
    search.add_argument("--video", action="append", metavar="NAME",
                        help="only videos whose file name or path matches (glob patterns allowed; repeatable)")
    search.add_argument("--between", nargs=2, metavar=("T1", "T2"),
                        help="only shots between these times in the video (seconds, or [h:]m:s)")
    search.add_argument("--limit", type=int, metavar="N", help="at most N shots")
    search.add_argument("--json", action="store_true", help="print a JSON array of shots")

    report = commands.add_parser(
        "report", help="write a static HTML gallery of an archive index",
        description="Write one self-contained HTML page (thumbnails embedded, no server, no network) with each "
        "video's best shots, their time, quality and components, sortable by quality.",
    )
    report.add_argument("folder", type=Path, metavar="DIR", help="index folder written by 'fiqa-stream index'")
    report.add_argument("--out", type=Path, metavar="FILE", help="page to write (default: DIR/report.html)")
    report.add_argument("--per-video", type=int, metavar="N", help="at most N best shots per video, best first")


def _index_config(args: argparse.Namespace) -> Any:
    from fiqa_stream.config import load_config, parse_config

    defaults = {"sources": [{"url": "(index paths)"}], "sinks": [{"type": "directory", "path": str(args.out)}]}
    config = load_config(args.config, defaults) if args.config else parse_config(defaults, "command line")
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise ConfigError(f"index: --workers must be between 1 and 64 (got {args.workers})")
    if args.coarse is not None:
        config = config.model_copy(update={"index": config.index.model_copy(update={"coarse": args.coarse})})
    return config


def _index(args: argparse.Namespace) -> int:
    from fiqa_stream.archive.display import IndexProgress, print_index_summary, progress_enabled
    from fiqa_stream.archive.indexer import Indexer, Runner
    from fiqa_stream.logs import configure_logging

    config = _index_config(args)
    json_logs = args.log_json or (args.log_format or config.logging.format) == "json"
    show_progress = progress_enabled(args.quiet, json_logs)
    level = "debug" if args.verbose else ("warning" if args.quiet or show_progress else config.logging.level)
    configure_logging(level, json_logs)
    # The workers log as this process does.
    logging_config = config.logging.model_copy(update={"format": "json" if json_logs else "text", "level": level})
    config = config.model_copy(update={"logging": logging_config})
    runner: Runner
    if args.ray:
        from fiqa_stream.archive.ray_cluster import RayRunner

        runner = RayRunner(config, args.ray)
    else:
        from fiqa_stream.archive.local import LocalRunner

        runner = LocalRunner(config, args.workers or config.pipeline.workers)
    stop = threading.Event()
    install_stop_handlers(stop)
    with IndexProgress(show_progress) as progress:
        summary = Indexer(config, args.out, runner, progress, follow_links=args.follow_links).run(args.paths, stop)
    log.info("index finished: %d indexed, %d partly, %d failed, %d skipped, %d left; %d best shots in %.1f s",
             summary.done, summary.partial, summary.failed, summary.skipped, summary.unfinished,
             summary.best_shots, summary.seconds)
    print_index_summary(summary, args.quiet)
    if summary.interrupted or summary.unfinished:
        return Exit.INTERRUPTED
    return Exit.OK if summary.ok else Exit.FAILURES


def parse_time(text: str) -> float:
    """Seconds from ``12.5``, ``1:02.5`` or ``1:00:02``."""
    try:
        value = 0.0
        for part in text.split(":"):
            value = value * 60 + float(part)
    except ValueError:
        raise ConfigError(f"search: --between: expected seconds or [h:]m:s, got {text!r}") from None
    return value


def video_matches(path: str, pattern: str) -> bool:
    """``pattern`` (a glob) matches the file name, the whole path, or its last parts (``day2/*.mp4``)."""
    return (fnmatch.fnmatchcase(Path(path).name, pattern) or fnmatch.fnmatchcase(path, pattern)
            or fnmatch.fnmatchcase(path, "*/" + pattern.lstrip("/")))


def _search(args: argparse.Namespace) -> int:
    from fiqa_stream.archive.database import ArchiveIndex
    from fiqa_stream.archive.display import print_shots, shot_json

    if args.min_quality is not None and not 0.0 <= args.min_quality <= 1.0:
        raise ConfigError(f"search: --min-quality must be between 0 and 1 (got {args.min_quality:g})")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"search: --limit must be at least 1 (got {args.limit})")
    between = None
    if args.between:
        between = (parse_time(args.between[0]), parse_time(args.between[1]))
        if between[0] > between[1]:
            raise ConfigError(f"search: --between: {args.between[0]} is after {args.between[1]}")
    with ArchiveIndex(args.folder, create=False) as index:
        video_ids = None
        if args.video:
            video_ids = [v.id for v in index.videos() if any(video_matches(v.path, name) for name in args.video)]
        shots = index.shots(min_quality=args.min_quality, video_ids=video_ids, between=between, limit=args.limit)
        folder = index.folder
    if args.json:
        print(json.dumps([shot_json(s, folder) for s in shots], indent=2))
    else:
        print_shots(shots, folder)
    return Exit.OK


def _report(args: argparse.Namespace) -> int:
    from fiqa_stream.archive.database import ArchiveIndex
    from fiqa_stream.archive.report import write_report

    with ArchiveIndex(args.folder, create=False) as index:
        target = write_report(index, args.out, per_video=args.per_video)
    print(f"report written to {target}")
    return Exit.OK


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"index": _index, "search": _search, "report": _report}
