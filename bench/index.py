"""Archive indexing benchmark: a folder of composed 1280×720 25 fps clips with real faces,
indexed with 1 and with 2 worker processes.

    python bench/index.py [--clips 6] [--seconds 4] [--workers 1 2] [--no-write]

Prints videos/hour, analysed frames/s, the scaling ratio and each worker's peak RSS,
and records them in docs/BENCHMARKS.md with the machine. Each run indexes into a fresh
folder; clip composition is not timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(folder: Path, out: Path, workers: int, scorer: str) -> dict:
    from fiqa_stream.archive.indexer import Indexer
    from fiqa_stream.archive.local import LocalRunner
    from fiqa_stream.config import parse_config

    config = parse_config({
        "sources": [{"url": str(folder)}],
        "scorer": {"type": scorer},
        "sinks": [{"type": "directory", "path": str(out)}],
        "logging": {"level": "warning"},
    })
    runner = LocalRunner(config, workers)
    summary = Indexer(config, out, runner).run([str(folder)], threading.Event())
    if not summary.ok or summary.done != summary.found:
        raise SystemExit(f"benchmark run failed: {summary.failures}")
    return {
        "videos": summary.done,
        "seconds": summary.seconds,
        "frames": summary.frames_analysed,
        "fps": summary.fps,
        "videos_per_hour": summary.videos_per_hour,
        "best_shots": summary.best_shots,
        "peak_rss_mb": max(summary.peak_rss_mb.values()),
        "workers_seen": len(summary.peak_rss_mb),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--faces", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scorer", default="fiqa", help="scorer type (default: %(default)s, as in a run)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()

    from fiqa_stream.media.clips import compose_face_clip

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "archive"
        folder.mkdir()
        for n in range(args.clips):
            compose_face_clip(folder / f"clip-{n:02d}.mp4", width=1280, height=720, fps=25.0,
                              seconds=args.seconds, faces=args.faces, seed=100 + n)
        results = {w: measure(folder, Path(work) / f"index-{w}", w, args.scorer) for w in args.workers}
    load = os.getloadavg()[0]
    base = results[args.workers[0]]
    lines = [
        f"### Archive indexing, {args.clips} clips of {args.seconds:g} s at 1280×720 25 fps, CPU defaults",
        "",
        f"`python bench/index.py --clips {args.clips} --seconds {args.seconds:g} --faces {args.faces} "
        f"--workers {' '.join(map(str, args.workers))} --scorer {args.scorer}` (YuNet, {args.scorer} scorer, "
        f"every frame analysed, index with crops; 1-minute load average at the end: {load:.1f})",
        "",
        "| workers | videos/hour | analysed frames/s | scaling vs 1 | wall time | peak RSS per worker |",
        "|---|---|---|---|---|---|",
        *(f"| {w} | {r['videos_per_hour']:.0f} | {r['fps']:.1f} | {r['fps'] / base['fps']:.2f}× | "
          f"{r['seconds']:.1f} s | {r['peak_rss_mb']:.0f} MB |" for w, r in results.items()),
        "",
        f"{base['frames']} frames and {base['best_shots']} best shots per run. Wall time includes starting the "
        "worker processes and fingerprinting; each worker gets cores/workers native threads.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("index", report)


if __name__ == "__main__":
    main()
