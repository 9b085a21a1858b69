"""The ``fiqa-stream`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fiqa_stream import __version__
from fiqa_stream.archive import commands as archive_commands
from fiqa_stream.cli import models as model_commands
from fiqa_stream.cli.exits import Exit, install_stop_handlers
from fiqa_stream.errors import ConfigError, FiqaError
from fiqa_stream.logs import configure_logging
from fiqa_stream.native_heap import bound_native_heap
from fiqa_stream.redact import redact_url

if TYPE_CHECKING:
    from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound="BaseModel")

log = logging.getLogger("fiqa_stream")

DESCRIPTION = """\
Find every face in video, follow it across frames, score each sighting for face-image
quality, and keep the single best shot per face.

exit status: 0 all went well; 1 some sources or sinks failed (the others finished; a
truncated or damaged file is a failed source); 2 fatal error (bad configuration, missing
file or dependency); 130 interrupted by SIGINT/SIGTERM (open tracks flushed first)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fiqa-stream", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"fiqa-stream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line (for log collectors)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="process video into best shots",
        description="Process the configured sources into best shots. With no config file, "
        "--source and --out are enough: defaults everywhere, crops and events.jsonl in --out.",
    )
    run.add_argument("config", nargs="?", type=Path, help="YAML config file (see configs/)")
    run.add_argument("--source", action="append", metavar="PATH_OR_URL",
                     help="video file, glob, folder or 'demo:'; replaces the config's sources (repeatable)")
    run.add_argument("--out", type=Path, metavar="DIR",
                     help="write best shots to this folder; replaces the config's sinks")
    run.add_argument("--progress", choices=("auto", "on", "off"), help="progress display (default: config)")

    check = commands.add_parser("check", help="validate a config file without running it",
                                description="Validate a config file and report the first problem, if any.")
    check.add_argument("config", type=Path, help="YAML config file")

    score = commands.add_parser(
        "score", help="score the faces in still images",
        description="Detect the faces in each image and print their quality and components.",
    )
    score.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    score.add_argument("--config", type=Path, help="take the detector and scorer from this config")
    score.add_argument("--json", action="store_true", help="print JSON: one object per image with its faces")

    consume = commands.add_parser(
        "consume", help="read best shots from Redis into a folder (reference consumer)",
        description="Read best shots from a Redis stream as one consumer of a consumer group, write "
        "them to a folder (crops + events.jsonl), acknowledge each once written, claim entries "
        "that dead consumers left pending, and drop repeats by event_id. See docs/REDIS.md.",
    )
    consume.add_argument("--url", default=os.environ.get("FIQA_REDIS_URL"),
                         help="Redis URL (default: $FIQA_REDIS_URL); the password may come from $FIQA_REDIS_PASSWORD")
    consume.add_argument("--stream", default="fiqa:bestshots", help="stream key (default: %(default)s)")
    consume.add_argument("--group", default="fiqa-consumers", help="consumer group (default: %(default)s)")
    consume.add_argument("--consumer", default=socket.gethostname(), help="this consumer's name (default: host name)")
    consume.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for crops and events.jsonl")
    consume.add_argument("--count", type=int, help="stop after this many entries")
    consume.add_argument("--idle-exit", type=float, metavar="SECONDS", help="stop after this long without entries")
    consume.add_argument("--claim-idle-ms", type=int, default=60_000,
                         help="claim other consumers' entries pending longer than this (default: %(default)s)")
    consume.add_argument("--dead-letter", metavar="STREAM",
                         help="stream for entries that cannot be decoded (default: the stream key + ':dead')")
    model_commands.add_commands(commands)
    archive_commands.add_commands(commands)
    return parser




def _config_for_run(args: argparse.Namespace) -> Any:
    from fiqa_stream.config import Config, load_config, parse_config
    from fiqa_stream.sinks.config import DirectorySinkConfig
    from fiqa_stream.stream.config import SourceConfig

    if args.config is None:
        if not args.source or not args.out:
            raise ConfigError("run: give a config file, or both --source and --out")
        return parse_config(
            {"sources": [{"url": s} for s in args.source], "sinks": [{"type": "directory", "path": str(args.out)}]},
            "command line",
        )
    config: Config = load_config(args.config)
    update: dict[str, Any] = {}
    if args.source:
        update["sources"] = [_validated(SourceConfig, {"url": s}, "--source") for s in args.source]
    if args.out:
        update["sinks"] = [_validated(DirectorySinkConfig, {"path": str(args.out)}, "--out")]
    if args.progress:
        update["pipeline"] = config.pipeline.model_copy(update={"progress": args.progress})
    return config.model_copy(update=update)


def _validated(model: type[ModelT], data: dict[str, Any], option: str) -> ModelT:
    """A config model from a command-line option; an invalid value names the option."""
    from pydantic import ValidationError

    from fiqa_stream.config import describe_validation_error

    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, data, f"command line {option}", model)) from None


def _run(args: argparse.Namespace) -> int:
    from fiqa_stream.cli.display import ProgressDisplay, print_summary
    from fiqa_stream.stream.pipeline import Pipeline

    config = _config_for_run(args)
    json_lines = args.log_json or config.logging.format == "json"
    configure_logging("debug" if args.verbose else config.logging.level, json_lines)
    if json_lines and config.pipeline.progress == "auto":
        config = config.model_copy(update={"pipeline": config.pipeline.model_copy(update={"progress": "off"})})
    stop = threading.Event()
    install_stop_handlers(stop, config.pipeline.shutdown_timeout)
    if config.pipeline.workers > 1:
        from fiqa_stream.stream.workers import run_sharded

        summary = run_sharded(config, stop)
    else:
        with ProgressDisplay(config.pipeline.progress) as display:
            summary = Pipeline(config, on_progress=display.update).run(stop)
    print_summary(summary, [str(getattr(s, "path", s.type)) for s in config.sinks], config)
    if summary.interrupted:
        return Exit.INTERRUPTED
    return Exit.OK if summary.ok else Exit.FAILURES


def _check(args: argparse.Namespace) -> int:
    from fiqa_stream.config import load_config
    from fiqa_stream.stream.sources import missing_files

    config = load_config(args.config)
    for line in missing_files(config.sources):
        print(f"fiqa-stream: warning: {args.config}: {line}", file=sys.stderr)
    print(f"{args.config}: ok ({len(config.sources)} source(s), detector {config.detector.type}, "
          f"scorer {config.scorer.type}, policy {config.selection.policy}, "
          f"sinks {', '.join(s.type for s in config.sinks)})")
    return Exit.OK


def _score(args: argparse.Namespace) -> int:
    from fiqa_stream.cli.display import print_scores
    from fiqa_stream.config import load_config
    from fiqa_stream.detectors.config import YuNetConfig
    from fiqa_stream.models import build_models
    from fiqa_stream.scorers.config import FiqaScorerConfig
    from fiqa_stream.stills import score_images

    if args.config:
        config = load_config(args.config)
        models = build_models(config.detector, config.scorer, config.device)
    else:
        models = build_models(YuNetConfig(), FiqaScorerConfig())
    with models:
        results = score_images(args.images, models)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_scores(results)
    return Exit.OK if all(r.get("error") is None for r in results) else Exit.FAILURES


def _consume(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from fiqa_stream.readers.redis_consumer import BestShotConsumer, ConsumerSettings
    from fiqa_stream.sinks.config import RedisSinkConfig

    if not args.url:
        raise ConfigError("consume: give --url or set FIQA_REDIS_URL")
    try:
        RedisSinkConfig.model_validate({"url": args.url})
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"consume --url {redact_url(args.url)}: {reason}") from None
    consumer = BestShotConsumer(ConsumerSettings(
        url=args.url, stream=args.stream, group=args.group, consumer=args.consumer, out=args.out,
        password=os.environ.get("FIQA_REDIS_PASSWORD"), claim_idle_ms=args.claim_idle_ms,
        dead_letter=args.dead_letter,
    ))
    stop = threading.Event()
    install_stop_handlers(stop)
    try:
        handled = consumer.run(stop, max_events=args.count, idle_exit=args.idle_exit)
    finally:
        consumer.close()
    print(f"{handled} entries handled: {consumer.written} best shots written to {args.out}, "
          f"{consumer.duplicates} repeats dropped, {consumer.dead_lettered} undecodable moved to "
          f"'{consumer.dead_letter_stream}'")
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    bound_native_heap()
    args = _parser().parse_args(argv)
    configure_logging("debug" if args.verbose else "info", args.log_json)
    handlers = {"run": _run, "check": _check, "score": _score, "consume": _consume, **model_commands.HANDLERS,
                **archive_commands.HANDLERS}
    try:
        return handlers[args.command](args)
    except FiqaError as error:
        print(f"fiqa-stream: error: {error}", file=sys.stderr)
        return Exit.FATAL
    except KeyboardInterrupt:
        print("fiqa-stream: aborted", file=sys.stderr)
        return Exit.INTERRUPTED

