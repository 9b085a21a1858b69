"""Coarse-to-fine archive indexing benchmark: a 10-minute 1280×720 25 fps surveillance
recording with sparse faces, indexed whole and coarse to fine, side by side in one run.

    python bench/archive_gating.py [--minutes 10] [--visits 12] [--fps 0 5] [--against REV] [--no-write]

The recording (composed once into ~/.cache/fiqa-stream-bench/, with its ground truth)
shows a fixed camera's view with sensor noise: ``--visits`` people walk through showing
their face for 5 s each (10 % of the time at the defaults), ten people seen from behind
cross at other times. For each analysed rate (``--fps``: frames per second, 0: every
frame) it runs ``fiqa-stream index`` as a person would (one worker process, the default
scorer, crops written) with ``--no-coarse``, with the coarse pass, and with the coarse pass
and motion gating turned on (``motion: {enabled: on}``), and reports wall
time, times real time, frames decoded and analysed per pass, recall (faces with a best
shot) and best shots inside the face's ground-truth best window.

A second table measures point 5 of issue 18 on a 20 s 1280×720 clip of
``compose_face_clip`` (libx264 veryfast: B-frames between references; the noisy recording
above has few, x264 puts key frames at its many "scene changes"): decode time per frame
of the file with the file source of ``--against`` (before issue 18: every frame decoded,
the analysed ones converted) and of this revision (non-reference frames no analysed frame
needs are skipped), at 5 and 2 analysed frames/s, and for key frames alone; best of three,
each revision in its own process (``common.revision_python``). Both tables go to
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
CACHE = Path.home() / ".cache" / "fiqa-stream-bench"
FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


def recording(minutes: float, visits: int) -> tuple[Path, dict[str, Any]]:
    """The cached recording and its truth (composed on the first call: several minutes)."""
    from fiqa_stream.media.surveillance import compose_surveillance_clip, spread_visits

    name = f"surveillance-{minutes:g}min-{visits}visits-v1"
    video, truth_file = CACHE / f"{name}.mp4", CACHE / f"{name}.json"
    if video.exists() and truth_file.exists():
        return video, json.loads(truth_file.read_text())
    CACHE.mkdir(parents=True, exist_ok=True)
    seconds = 60.0 * minutes
    faces = spread_visits(seconds, visits, 5.0, seed=18)
    passers = [(start + 2.5, 4.0) for start, _ in spread_visits(seconds - 5.0, 10, 4.0, seed=81)]
    print(f"composing {video} (once) ...", file=sys.stderr)
    part = video.with_suffix(".part.mp4")
    truth = compose_surveillance_clip(part, width=1280, height=720, fps=25.0, seconds=seconds, visits=faces,
                                      passers=passers, seed=18)
    record = {
        "fps": truth.fps, "frames": truth.frame_count, "visits": faces, "passers": passers,
        "faces": [{"best": list(f.best_frames), "centers": {str(i): c for i, c in f.centers.items()}}
                  for f in truth.faces],
    }
    truth_file.write_text(json.dumps(record))
    os.replace(part, video)
    return video, record


def score(index: Path, truth: dict[str, Any]) -> dict[str, float]:
    """Recall (faces with a best shot) and best shots inside their face's best window."""
    with sqlite3.connect(index / "index.sqlite3") as db:
        rows = list(db.execute("SELECT frame_index, x1, y1, x2, y2 FROM best_shots"))
    found: dict[int, list[int]] = {}
    for frame, x1, y1, x2, y2 in rows:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for number, face in enumerate(truth["faces"]):
            center = face["centers"].get(str(frame))
            if center is not None and abs(center[0] - cx) < x2 - x1 and abs(center[1] - cy) < y2 - y1:
                found.setdefault(number, []).append(frame)
    faces = len(truth["faces"])
    in_window = sum(1 for n, frames in found.items()
                    if any(truth["faces"][n]["best"][0] <= f <= truth["faces"][n]["best"][1] for f in frames))
    return {"shots": len(rows), "recall": len(found) / faces, "window": in_window / faces,
            "unmatched": len(rows) - sum(len(f) for f in found.values())}


def index_once(video: Path, fps: float, coarse: bool, work: Path, motion: bool = False) -> dict[str, Any]:
    """One ``fiqa-stream index`` run; its wall time and what its log says each pass did."""
    mode = ("coarse" if coarse else "whole") + ("-motion" if motion else "")
    out = work / f"index-{fps:g}-{mode}"
    config = work / f"config-{fps:g}-{mode}.yaml"
    source = f"sources: [{{url: '-', fps: {fps}}}]\n" if fps else "sources: [{url: '-'}]\n"
    config.write_text(source + ("motion: {enabled: 'on'}\n" if motion else ""))
    started = time.perf_counter()
    result = subprocess.run([FIQA_STREAM, "index", str(video), "--out", str(out), "--config", str(config),
                             "--workers", "1", "--log-format", "json", "--coarse" if coarse else "--no-coarse"],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"index failed ({result.returncode}): {result.stderr[-2000:]}")
    with sqlite3.connect(out / "index.sqlite3") as db:
        decoded, analysed, analysis = next(db.execute("SELECT frames_decoded, frames_analysed, seconds FROM videos"))
    passes = [json.loads(line)["message"] for line in result.stderr.splitlines() if line.startswith("{")]
    detail = next((m.split("(", 1)[1].rstrip(")") for m in passes if m.startswith("indexed ")), "")
    return {"seconds": seconds, "analysis": analysis, "decoded": decoded, "analysed": analysed, "passes": detail,
            "out": out}


def read_source(path: Path, fps: float | None, key_frame_gap: float | None) -> dict[str, float]:
    """Decode ``path`` with a file source as the pipeline does; runs in the revision measured."""
    from fiqa_stream.stream.buffers import FrameBuffer
    from fiqa_stream.stream.config import SourceConfig
    from fiqa_stream.stream.file_source import FileSource
    from fiqa_stream.stream.source_base import SourceEnd, SourceItem

    config = SourceConfig(url=str(path), fps=fps, queue_size=8)
    buffer: FrameBuffer[SourceItem] = FrameBuffer(8, "block", threading.Condition())
    options = {} if key_frame_gap is None else {"key_frame_gap": key_frame_gap}
    reader = FileSource("bench", path, config, buffer, threading.Event(), **options)
    started = time.perf_counter()
    reader.start()
    kept = 0
    while True:
        item = buffer.get_nowait()
        if item is None:
            time.sleep(0.0005)
        elif isinstance(item, SourceEnd):
            break
        else:
            kept += 1
    reader.join(5)
    return {"seconds": time.perf_counter() - started, "decoded": reader.decoded, "kept": kept}


def decode_table(clip: Path, against: str) -> list[str]:
    """Point 5: ms per file frame to decode a 720p H.264 clip with B-frames, with this
    revision's file source and with ``against``'s (which decodes every frame), best of three."""
    import av
    from common import revision_python

    before = revision_python(against)

    def best(python: Path | None, fps: float | None, key_frame_gap: float | None = None) -> dict[str, float]:
        # The machine is shared: the fastest of three is the least disturbed.
        runs = []
        for _ in range(3):
            if python is None:
                runs.append(read_source(clip, fps, key_frame_gap))
            else:
                job = json.dumps([str(clip), fps, key_frame_gap])
                child = subprocess.run([str(python), __file__, "--read-source", job], check=True,
                                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
                runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        return min(runs, key=lambda run: run["seconds"])

    with av.open(str(clip)) as container:
        frames = container.streams.video[0].frames
    rows = [
        ("every frame analysed (nothing to skip)", None, best(None, None)),
        ("5 frames/s analysed", against, best(before, 5.0)),
        ("5 frames/s analysed", "this", best(None, 5.0)),
        ("2 frames/s analysed", against, best(before, 2.0)),
        ("2 frames/s analysed", "this", best(None, 2.0)),
        ("key frames alone, at most 1.25 s apart (the coarse pass)", "this", best(None, None, 1.25)),
    ]
    return [
        f"| {what} | {revision or 'both'} | {run['seconds'] * 1000 / frames:.2f} | {run['decoded']:.0f} | "
        f"{run['kept']:.0f} |" for what, revision, run in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--visits", type=int, default=12)
    parser.add_argument("--fps", type=float, nargs="+", default=[0.0, 5.0],
                        help="analysed frames per second of the runs (0: every frame)")
    parser.add_argument("--against", default="3650cb4", help="revision whose file source decodes every frame "
                        "(default: %(default)s, before issue 18)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--read-source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_source:
        path, fps, key_frame_gap = json.loads(args.read_source)
        print(json.dumps(read_source(Path(path), fps, key_frame_gap)))
        return

    from fiqa_stream.media.clips import compose_face_clip

    video, truth = recording(args.minutes, args.visits)
    excerpt = CACHE / "faces-720p-20s-v1.mp4"
    if not excerpt.exists():
        compose_face_clip(excerpt, width=1280, height=720, fps=25.0, seconds=20.0, faces=3, seed=3)
    duration = truth["frames"] / truth["fps"]
    face_share = sum(length for _, length in truth["visits"]) / duration
    rows = []
    modes = {(False, False): "whole (--no-coarse)", (True, False): "coarse to fine",
             (True, True): "coarse to fine, motion gating on"}
    with tempfile.TemporaryDirectory() as work:
        for fps in args.fps:
            for (coarse, motion), mode in modes.items():
                run = index_once(video, fps, coarse, Path(work), motion)
                run.update(score(run.pop("out"), truth))
                print(json.dumps({"fps": fps, "coarse": coarse, "motion": motion, **run}), file=sys.stderr)
                rate = f"{fps:g}/s" if fps else "every frame"
                rows.append(
                    f"| {rate} | {mode} | {run['seconds']:.1f} s | "
                    f"{duration / run['seconds']:.1f}× | {run['decoded']} | {run['analysed']} | {run['passes']} | "
                    f"{run['recall']:.2f} | {run['window']:.2f} | {run['shots']} |"
                )
    decode_rows = decode_table(excerpt, args.against)
    load = os.getloadavg()[0]
    lines = [
        f"### Coarse-to-fine indexing, a {args.minutes:g}-minute 1280×720 25 fps surveillance recording",
        "",
        f"`python bench/archive_gating.py --minutes {args.minutes:g} --visits {args.visits} --fps "
        f"{' '.join(f'{f:g}' for f in args.fps)}`: `fiqa-stream index` with one worker (YuNet, the default "
        f"scorer, crops written), whole, coarse to fine, and coarse to fine with motion gating turned on "
        f"(`motion: {{enabled: 'on'}}` in `--config`; files are detected whole by default), one after the "
        f"other in one run. {args.visits} faces "
        f"walk through for 5 s each ({face_share:.0%} of the time), 10 people seen from behind cross at other "
        f"times, sensor noise on every frame; H.264 (libx264 veryfast, a key frame at least every second and "
        f"many more at what x264 takes for scene changes). "
        f"Wall time includes starting the worker and fingerprinting; 1-minute load average at the end: {load:.1f}.",
        "",
        "| analysed | mode | wall time | × real time | frames decoded | frames analysed | passes | recall | "
        "best shot in window | best shots |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Recall: faces with a best shot; window: faces whose best shot lies in their ground-truth best window "
        "(±0.12 s of the best moment). Coarse to fine: frames analysed = coarse frames detected + fine frames "
        "analysed.",
        "",
        f"Decoding only what is analysed (point 5): a 20 s 1280×720 clip of `compose_face_clip` (500 frames, "
        f"libx264 veryfast with B-frames) read by the file source of this revision and of {args.against} (which "
        "decodes every frame), frame-threaded, wall time per frame of the file including the packet scan, best "
        "of three:",
        "",
        "| analysed | file source of | ms per file frame | frames decoded | frames converted to BGR |",
        "|---|---|---|---|---|",
        *decode_rows,
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("archive_gating", report)


if __name__ == "__main__":
    main()
