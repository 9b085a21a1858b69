"""Whole-pipeline benchmark on a composed 1280×720 25 fps clip with real faces.

    python bench/pipeline.py [--seconds 20] [--faces 4] [--no-write]
    python bench/pipeline.py --against REV [--rounds 3]

Prints frames/s, per-stage time and peak memory, and records them in
docs/BENCHMARKS.md with the machine. The clip is composed first; the measurement runs
in a fresh child process so that its peak RSS is the pipeline's alone. With
``--against``, the working tree and the git revision REV run the same clip in turns
(REV, this, REV, this, ...), each in a fresh process, and the ratio of their median
frames/s is reported: a busy machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(clip: Path, out: Path, max_width: int) -> dict:
    import av

    from fiqa_stream.config import parse_config
    from fiqa_stream.stream.pipeline import Pipeline

    started = time.perf_counter()
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="bgr24") is not None)
    decode_seconds = time.perf_counter() - started

    config = parse_config({
        "sources": [{"url": str(clip), "id": "bench"}],
        "detector": {"type": "yunet", "max_width": max_width},
        "sinks": [{"type": "directory", "path": str(out), "fsync": False}],
        "pipeline": {"progress": "off"},
    })
    summary = Pipeline(config).run()
    return {
        "frames": summary.frames_analysed,
        "seconds": summary.seconds,
        "fps": summary.fps,
        "stages": summary.stage_seconds,
        "decode_only_fps": decoded / decode_seconds,
        "best_shots": summary.best_shots,
        "scorer": f"{config.scorer.type} scorer" + (f" ({config.scorer.model})" if config.scorer.type == "fiqa"
                                                   else ""),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(python: Path, clip: Path, max_width: int) -> dict:
    child = subprocess.run(
        [str(python), __file__, "--measure", str(clip), "--max-width", str(max_width)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def per_run(results: list[dict]) -> str:
    return ", ".join(f"{result['fps']:.1f}" for result in results)


STAGES = ("detect", "track", "score", "select")


def stage_ms(results: list[dict]) -> str:
    """Median per-frame milliseconds of each stage over the runs."""
    return " | ".join(
        f"{statistics.median(1000 * r['stages'].get(stage, 0.0) / r['frames'] for r in results):.2f}"
        for stage in STAGES
    )


def compare(args: argparse.Namespace, clip: Path) -> None:
    from common import revision_python, write_section

    base = revision_python(args.against)
    runs: dict[str, list[dict]] = {"base": [], "this": []}
    for _ in range(args.rounds):
        runs["base"].append(run_child(base, clip, args.max_width))
        runs["this"].append(run_child(Path(sys.executable), clip, args.max_width))
    fps = {name: statistics.median(r["fps"] for r in results) for name, results in runs.items()}
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
    lines = [
        "### Whole pipeline against an earlier revision, side by side",
        "",
        f"`python bench/pipeline.py --against {args.against} --rounds {args.rounds} --seconds {args.seconds:g}"
        f" --faces {args.faces}` (same clip and settings; runs in turns, each in a fresh process)",
        "",
        "| code | frames/s per run | median | " + " | ".join(f"{stage} ms/frame" for stage in STAGES)
        + " | best shots |",
        "|---|---|---|" + "---|" * len(STAGES) + "---|",
        *(f"| {label} | {per_run(runs[name])} | {fps[name]:.1f} | {stage_ms(runs[name])} | "
          f"{runs[name][0]['best_shots']} |"
          for name, label in (("base", args.against), ("this", f"{revision} + working tree"))),
        "",
        f"**ratio: {fps['this'] / fps['base']:.2f}×** the throughput of {args.against}.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("pipeline-against", report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--faces", type=int, default=4)
    parser.add_argument("--max-width", type=int, default=640)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--against", metavar="REV", help="git revision to compare with, side by side")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: runs of each, in turns")
    args = parser.parse_args()

    if args.measure:
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(measure(args.measure, Path(out), args.max_width)))
        return

    from fiqa_stream.media.clips import compose_face_clip

    with tempfile.TemporaryDirectory() as work:
        clip = compose_face_clip(Path(work) / "bench.mp4", width=1280, height=720, fps=25.0,
                                 seconds=args.seconds, faces=args.faces, seed=1)
        if args.against:
            compare(args, clip.path)
            return
        result = run_child(Path(sys.executable), clip.path, args.max_width)
    per_frame = {stage: 1000 * s / result["frames"] for stage, s in result["stages"].items()}
    lines = [
        "### Whole pipeline, one 1280×720 25 fps stream, CPU defaults",
        "",
        f"`python bench/pipeline.py --seconds {args.seconds:g} --faces {args.faces} --max-width {args.max_width}`"
        f" (YuNet at {args.max_width} px wide, default {result['scorer']}, every frame analysed, directory sink)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| frames analysed | {result['frames']} |",
        f"| **throughput** | **{result['fps']:.1f} frames/s** ({result['fps'] / 25:.2f}× real time) |",
        f"| decode alone (PyAV, threaded, to BGR) | {result['decode_only_fps']:.0f} frames/s |",
        *(f"| {stage} | {ms:.2f} ms/frame |" for stage, ms in per_frame.items()),
        f"| best shots | {result['best_shots']} ({args.faces} faces composed) |",
        f"| peak RSS | {result['peak_rss_mb']:.0f} MB |",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("pipeline", report)


if __name__ == "__main__":
    main()
