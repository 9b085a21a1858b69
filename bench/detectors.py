"""The embedded detectors side by side: accuracy, speed and memory, measured in one run.

    python bench/detectors.py [--clips 2] [--seconds 20] [--faces 5] [--calls 2000] [--rounds 2] [--no-write]

Variants: YuNet (``yuface``) in a recycled child process (the default), YuNet in the
run's own process (``recycle_growth_mb: 0``), and CenterFace on onnxruntime. Each runs
the whole pipeline (defaults otherwise) on the same composed 1280×720 25 fps clips of
real faces, in a fresh process, in turns (A B C, A B C, ...) so that a busy machine
weighs on all alike. Accuracy is judged against the clips' ground truth: recall (faces
with a final best shot), best shots inside the face's ground-truth best window, and
final events per face. Memory: ``--calls`` detections of one 1280×720 frame in a fresh
process, resident memory of the process and its children before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS: dict[str, dict] = {
    "yunet, recycled child process (default)": {"type": "yunet"},
    "yunet, in the run's process": {"type": "yunet", "recycle_growth_mb": 0},
    "centerface (onnxruntime)": {"type": "centerface"},
}


def tree_rss_mb(root: int) -> float:
    from soak import descendants

    total = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total / 2**20


def run_pipeline(detector: dict, clip: Path) -> dict:
    from fiqa_stream.config import parse_config
    from fiqa_stream.stream.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as out:
        config = parse_config({
            "sources": [{"url": str(clip), "id": "bench"}],
            "detector": detector,
            "sinks": [{"type": "directory", "path": out, "fsync": False}],
            "pipeline": {"progress": "off"},
        })
        summary = Pipeline(config).run()
        events = [json.loads(line) for line in (Path(out) / "events.jsonl").read_text().splitlines()]
    return {"fps": summary.fps, "detect_s": summary.stage_seconds.get("detect", 0.0),
            "frames": summary.frames_analysed, "events": events}


def detector_growth(detector: dict, calls: int) -> dict:
    import numpy as np

    from fiqa_stream.config import parse_config
    from fiqa_stream.detectors import build_detector

    config = parse_config({"sources": [{"url": "x.mp4"}], "sinks": [{"type": "directory", "path": "out"}],
                           "detector": detector})
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
    with build_detector(config.detector) as built:  # type: ignore[attr-defined]
        for _ in range(100):
            built.detect([frame])
        before = tree_rss_mb(os.getpid())
        started = time.perf_counter()
        for _ in range(calls):
            built.detect([frame])
        seconds = time.perf_counter() - started
        after = tree_rss_mb(os.getpid())
    return {"growth_mb": after - before, "ms_per_call": 1000 * seconds / calls}


def score(events: list[dict], truth: object) -> dict:
    """Recall, best shots in the ground-truth window and finals per face."""
    from fiqa_stream.media.clips import ClipTruth

    assert isinstance(truth, ClipTruth)
    finals = [e for e in events if e["kind"] == "final"]
    matched: dict[int, list[dict]] = {}
    for event in finals:
        x1, y1, x2, y2 = event["box"]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        visible = [f for f in truth.faces if event["frame_index"] in f.centers]
        if not visible:
            continue
        face = min(visible, key=lambda f: (f.centers[event["frame_index"]][0] - cx) ** 2
                   + (f.centers[event["frame_index"]][1] - cy) ** 2)
        fx, fy = face.centers[event["frame_index"]]
        if abs(fx - cx) < (x2 - x1) and abs(fy - cy) < (y2 - y1):
            matched.setdefault(face.face_id, []).append(event)
    in_window = sum(
        1 for face in truth.faces for e in matched.get(face.face_id, [])[:1]
        if face.best_frames[0] <= e["frame_index"] <= face.best_frames[1]
    )
    return {"faces": len(truth.faces), "found": len(matched), "in_window": in_window, "finals": len(finals)}


def child(args: argparse.Namespace) -> None:
    detector = json.loads(args.detector)
    if args.growth:
        print(json.dumps(detector_growth(detector, args.calls)))
    else:
        print(json.dumps(run_pipeline(detector, args.clip)))


def in_child(*options: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *options], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--faces", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="pipeline runs per variant and clip, in turns")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--detector", help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--growth", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.detector:
        child(args)
        return

    from fiqa_stream.media.clips import compose_face_clip

    fps: dict[str, list[float]] = {name: [] for name in VARIANTS}
    detect_ms: dict[str, list[float]] = {name: [] for name in VARIANTS}
    accuracy: dict[str, dict[str, int]] = {name: {"faces": 0, "found": 0, "in_window": 0, "finals": 0}
                                           for name in VARIANTS}
    with tempfile.TemporaryDirectory() as work:
        clips = [compose_face_clip(Path(work) / f"clip{n}.mp4", width=1280, height=720, fps=25.0,
                                   seconds=args.seconds, faces=args.faces, seed=10 + n) for n in range(args.clips)]
        for round_index in range(args.rounds):
            for clip in clips:
                for name, detector in VARIANTS.items():
                    result = in_child("--detector", json.dumps(detector), "--clip", str(clip.path))
                    fps[name].append(result["fps"])
                    detect_ms[name].append(1000 * result["detect_s"] / max(1, result["frames"]))
                    if round_index == 0:
                        for key, value in score(result["events"], clip).items():
                            accuracy[name][key] += value
                    print(name, clip.path.name, f"{result['fps']:.1f} frames/s", flush=True)
    growth = {name: in_child("--detector", json.dumps(detector), "--growth", "--calls", str(args.calls))
              for name, detector in VARIANTS.items()}
    reference = statistics.median(fps["yunet, in the run's process"])
    lines = [
        "### Embedded detectors side by side: accuracy, speed, memory (choice of the default)",
        "",
        f"`python bench/detectors.py --clips {args.clips} --seconds {args.seconds:g} --faces {args.faces} "
        f"--calls {args.calls} --rounds {args.rounds}` (whole pipeline with CPU defaults on {args.clips} composed "
        f"1280×720 25 fps clips of {args.faces} real faces, every frame analysed, each run a fresh process, variants "
        "in turns; memory: detections of one 1280×720 frame, process and children)",
        "",
        "| detector | recall | best shot in truth window | finals per face | pipeline frames/s (median) "
        "| vs in-process YuNet | detect ms/frame | memory growth over calls | ms per detect call |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        a, g, median = accuracy[name], growth[name], statistics.median(fps[name])
        lines.append(
            f"| {name} | {a['found']}/{a['faces']} | {a['in_window']}/{a['found']} | "
            f"{a['finals'] / max(1, a['faces']):.2f} | {median:.1f} | {median / reference:.2f}× | "
            f"{statistics.median(detect_ms[name]):.1f} | {g['growth_mb']:+.1f} MB over {args.calls} | "
            f"{g['ms_per_call']:.1f} |"
        )
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("detectors", report)


if __name__ == "__main__":
    main()
