"""Live streams benchmark: how many 720p RTSP cameras at 5 analysed frames/s one machine
sustains, and how evenly the cameras share the machine when it cannot keep up.

    python bench/live.py [--streams 8 12 16 20] [--seconds 20] [--warmup 8] [--scene faces]
                         [--motion off on] [--cameras together apart] [--against REV] [--no-write]

Serves a composed 1280×720 25 fps clip with real faces from a local GStreamer RTSP
server (one mount per camera, no re-encoding; needs Debian's gir1.2-gst-rtsp-server-1.0
and python3-gi), runs the pipeline with every camera at ``fps: 5``, and reports per
stream count the analysed frames/s per camera (min / mean), the fairness ratio (min /
mean), the share of decoded frames dropped by the latest-frame-wins buffers, p50/p99
capture-to-analysed latency of the worst camera, and the server's own CPU use.

``--cameras together`` (the default) has every camera serve the scene at the same moment,
so faces and motion reach all of them at once; ``apart`` has camera i start i/N of the
way through the clip (its beginning moved to its end, remuxed at a key frame, not
re-encoded), as independent cameras watching different places would.

Each measurement runs in a fresh process. ``--motion off on`` measures the pipeline
ungated and gated side by side (needs the ``motion`` config section); ``--against REV``
adds the same measurement of an earlier revision (see ``common.revision_python``), e.g.
to show fairness before and after a change.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, revision_python, serve_rtsp, stop_rtsp, write_section  # noqa: E402

CEILING = 5.0
#: Sustained: every camera at ≥ 95 % of its ceiling, p99 under a second.
SUSTAINED_FPS = 0.95 * CEILING
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def scene_clip(scene: str, path: Path, seconds: float) -> tuple[Path, Any]:
    """The clip every camera serves, and its truth (a ``ScenarioTruth``; None for ``faces``).
    Longer than a whole measurement: the test server ends the stream at the end of the
    file, and a camera's reconnection would count against analysis."""
    if scene == "faces":
        from fiqa_stream.media.clips import compose_face_clip

        return compose_face_clip(path, width=1280, height=720, fps=25.0, seconds=seconds, faces=3, seed=2).path, None
    import fiqa_stream.media.scenarios as scenarios

    if scene == "walkthrough":
        # People cross one at a time, at the scene's own pace: as many as keep faces in the
        # picture about 20 % of the time (one crossing in a minute at the default pace).
        crossing = inspect.signature(scenarios.walk_through).parameters["crossing"].default
        seconds = min(60.0, max(seconds, 5 * crossing))
        truth = scenarios.walk_through(path, width=1280, height=720, fps=25.0, seconds=seconds,
                                       people=max(1, round(0.2 * seconds / crossing)))
        return truth.path, truth
    compose = getattr(scenarios, scene, None)
    if compose is None:
        sys.exit(f"--scene {scene}: neither faces, walkthrough nor a scene of fiqa_stream.media.scenarios")
    truth = compose(path, width=1280, height=720, fps=25.0, seconds=seconds)
    return Path(truth.path), truth


def judged(shots: list[tuple[int, float | None, list[float]]], truth: Any, starts: list[float],
           streamed: float) -> dict[str, float]:
    """Recall and best shots in window over every face whose best moment some camera streamed.

    Camera ``n`` streams the clip from media time ``starts[n]``, and a shot's ``pts`` counts
    from there (the stream's first frame is its 0). A face counts for a camera when its best
    moment came between 1 s after the start and 1 s before ``streamed`` seconds; it was
    found when a best shot of that camera lies on its box at its time, in window when that
    time lies in its ground-truth best window (``ScenarioFace.best_window``)."""
    length = truth.frame_count / truth.fps
    expected = found = in_window = 0
    for camera, start in enumerate(starts):
        frames = [(round(((pts + start) % length) * truth.fps) % truth.frame_count, box)
                  for n, pts, box in shots if n == camera and pts is not None]
        for face in truth.faces:
            if not 1.0 <= (face.best_frame / truth.fps - start) % length <= streamed - 1.0:
                continue
            expected += 1
            on_face = [frame for frame, box in frames if frame in face.boxes and _overlaps(box, face.boxes[frame])]
            found += bool(on_face)
            in_window += any(face.best_window[0] <= frame <= face.best_window[1] for frame in on_face)
    return {"expected": expected, "recall": found / max(1, expected), "window": in_window / max(1, expected)}


def _overlaps(shot: list[float], face: Any) -> bool:
    """Whether a best shot's box lies on a composed face's box (centre within the box's size)."""
    return (abs((shot[0] + shot[2]) / 2 - (face[0] + face[2]) / 2) < face[2] - face[0]
            and abs((shot[1] + shot[3]) / 2 - (face[1] + face[3]) / 2) < face[3] - face[1])


def rotated(clip: Path, offset: float, out: Path) -> tuple[Path, float]:
    """``clip`` from its key frame nearest ``offset`` seconds to its end, then its beginning up
    to there: the same pictures starting elsewhere, remuxed, not re-encoded. Returns the
    new file and the media time of ``clip`` it starts at."""
    import av

    with av.open(str(clip)) as source, av.open(str(out), "w", format="mp4") as target:
        video = source.streams.video[0]
        packets = [packet for packet in source.demux(video) if packet.size]
        assert video.time_base is not None
        keys = [n for n, packet in enumerate(packets) if packet.is_keyframe]
        cut = min(keys, key=lambda n: abs(float(packets[n].pts * video.time_base) - offset))
        output = target.add_stream_from_template(video)
        first_pts = packets[0].pts
        cut_pts = packets[cut].pts
        # The clip's length in its time base: its last frame's presentation time plus one frame.
        length = max(p.pts for p in packets) + packets[-1].duration - first_pts
        for n, packet in enumerate(packets[cut:] + packets[:cut]):
            shift = -cut_pts if n < len(packets) - cut else length - cut_pts + first_pts
            packet.pts += shift
            packet.dts += shift
            packet.stream = output
            target.mux(packet)
        return out, float((cut_pts - first_pts) * video.time_base)


def camera_clips(clip: Path, streams: int, cameras: str) -> list[tuple[Path, float]]:
    """The clip each camera serves and the media time of ``clip`` it starts at: the same
    one (``together``), or each its own starting point spread evenly over the clip (``apart``)."""
    if cameras == "together":
        return [(clip, 0.0)] * streams
    import av

    with av.open(str(clip)) as source:
        seconds = float(source.streams.video[0].duration * source.streams.video[0].time_base)
    return [rotated(clip, n * seconds / streams, clip.with_name(f"{clip.stem}-{n}.mp4")) for n in range(streams)]


def measure(urls: list[str], seconds: float, warmup: float, motion: str | None) -> dict:
    """Runs in the measuring process: the pipeline on ``urls`` for ``warmup + seconds``."""
    from fiqa_stream.config import Config, parse_config
    from fiqa_stream.stream.pipeline import Pipeline, SourceStats

    sections: dict = {}
    if motion is not None:
        if "motion" not in Config.model_fields:
            sys.exit("--motion: this revision has no 'motion' config section")
        sections["motion"] = {"enabled": motion}
    with tempfile.TemporaryDirectory() as out:
        config = parse_config({
            "sources": [{"url": url, "id": f"cam{n}", "fps": CEILING} for n, url in enumerate(urls)],
            "sinks": [{"type": "directory", "path": out, "fsync": False}],
            "pipeline": {"progress": "off"},
            **sections,
        })
        snapshots: list[list[SourceStats]] = []
        stop = threading.Event()
        pipeline = Pipeline(config, on_progress=lambda s: snapshots.append(
            [SourceStats(**{f: getattr(x, f) for f in SourceStats.__slots__}) for x in s]), progress_interval=0.5)
        summaries = []
        runner = threading.Thread(target=lambda: summaries.append(pipeline.run(stop)))
        runner.start()
        time.sleep(warmup)
        before = snapshots[-1]
        time.sleep(seconds)
        after = snapshots[-1]
        registry = pipeline.metrics.registry
        overloaded = registry.get_sample_value("fiqa_pipeline_overloaded")
        stop.set()
        runner.join(60)
        # Every final best shot, open tracks' included (stopping flushes them): camera, media time, box.
        events = [json.loads(line) for line in (Path(out) / "events.jsonl").read_text().splitlines()]
        shots = [(int(e["source"].removeprefix("cam")), e["pts"], e["box"]) for e in events if e["kind"] == "final"]
    pairs = list(zip(after, before, strict=True))
    analysed = [(a.analysed - b.analysed) / seconds for a, b in pairs]
    # Motion gating's count of analysed frames the detector never saw (absent before it existed).
    skipped = sum(getattr(a, "detection_skipped", 0) - getattr(b, "detection_skipped", 0) for a, b in pairs)
    decoded = [(a.decoded - b.decoded) / seconds for a, b in pairs]
    dropped = sum(a.dropped - b.dropped for a, b in pairs)
    mean = sum(analysed) / len(analysed)
    return {
        "streams": len(urls), "motion": motion, "analysed": analysed, "decoded": decoded,
        "min_fps": min(analysed), "mean_fps": mean, "fairness": min(analysed) / mean if mean else 0.0,
        "min_decoded_fps": min(decoded),
        # Of the frames the sampler kept for analysis (analysed + dropped), the share the buffers dropped.
        "drop_rate": dropped / max(1.0, sum(analysed) * seconds + dropped),
        "p50": max(s.latency_p50 or 0.0 for s in after), "p99": max(s.latency_p99 or 0.0 for s in after),
        "overloaded": overloaded, "overloaded_s": getattr(summaries[0], "overloaded_seconds", None),
        "skipped": skipped / max(1.0, sum(analysed) * seconds),
        "shots": shots,
    }


def run_measurement(python: Path, urls: list[str], args: argparse.Namespace, motion: str | None,
                    server: subprocess.Popen) -> dict:
    """One measurement in a fresh process of ``python`` (this tree's or an earlier revision's)."""
    job = {"urls": urls, "seconds": args.seconds, "warmup": args.warmup, "motion": motion}
    server_cpu = cpu_seconds(server.pid)
    started = time.monotonic()
    child = subprocess.run([str(python), __file__, "--measure", json.dumps(job)],
                           check=True, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["server_cpu"] = (cpu_seconds(server.pid) - server_cpu) / (time.monotonic() - started)
    return result


def has_motion_gating(python: Path) -> bool:
    probe = [str(python), "-c", "from fiqa_stream.config import Config; print('motion' in Config.model_fields)"]
    # Not from the repository root: there, this tree's fiqa_stream would shadow the revision's.
    return subprocess.run(probe, check=True, capture_output=True, text=True, cwd="/").stdout.strip() == "True"


def row(code: str, r: dict) -> str:
    gating = {"on": "gated", "off": "ungated", None: "default"}[r["motion"]]
    overloaded = "–" if r["overloaded"] is None else ("yes" if r["overloaded"] else "no")
    return (f"| {r['streams']} | {r['cameras']} | {code} | {gating} | {r['min_fps']:.2f} / {r['mean_fps']:.2f} | "
            f"**{r['fairness']:.2f}** | {r['min_decoded_fps']:.1f} | {100 * r['drop_rate']:.1f}% | "
            f"{1000 * r['p50']:.0f} ms | {1000 * r['p99']:.0f} ms | {100 * r['skipped']:.0f}% | {overloaded} | "
            f"{100 * r['server_cpu']:.0f}% | {_judgement(r)} |")


def _judgement(r: dict) -> str:
    if "expected" not in r:
        return "– | – | –"
    return f"{r['expected']} | {r['recall']:.2f} | {r['window']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[8, 12, 16, 20])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--scene", default="faces",
                        help="faces (the composed clip of three faces), walkthrough (people cross a still scene, "
                        "faces about 20 %% of the time) or another scene of fiqa_stream.media.scenarios")
    parser.add_argument("--motion", nargs="+", choices=["on", "off"],
                        help="measure with motion gating on and/or off (default: the config's default)")
    parser.add_argument("--cameras", nargs="+", choices=["together", "apart"], default=["together"],
                        help="every camera at the same moment of the scene, and/or each at its own")
    parser.add_argument("--against", help="also measure this earlier revision, side by side")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        job = json.loads(args.measure)
        print(json.dumps(measure(job["urls"], job["seconds"], job["warmup"], job["motion"])))
        return

    codes: list[tuple[str, Path]] = [("this", Path(sys.executable))]
    if args.against:
        codes.insert(0, (args.against, revision_python(args.against)))
    # A revision without motion gating is measured once, as it is.
    gatings = {code: (args.motion or [None]) if has_motion_gating(python) else [None] for code, python in codes}
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    rows: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory() as work:
        clip, truth = scene_clip(args.scene, Path(work) / "live.mp4", args.warmup + args.seconds + 15)
        for streams in args.streams:
            for cameras in args.cameras:
                served = camera_clips(clip, streams, cameras)
                server, urls = serve_rtsp([path for path, _ in served])
                try:
                    for code, python in codes:
                        for motion in gatings[code]:
                            result = run_measurement(python, urls, args, motion, server) | {"cameras": cameras}
                            if truth is not None:
                                result |= judged(result["shots"], truth, [start for _, start in served],
                                                 args.warmup + args.seconds)
                            print(code, {k: v for k, v in result.items() if k not in ("analysed", "decoded", "shots")},
                                  "analysed per camera:", " ".join(f"{x:.2f}" for x in result["analysed"]),
                                  flush=True)
                            rows.append((code if code != "this" else f"{revision}+", result))
                finally:
                    stop_rtsp(server)
    command = (f"python bench/live.py --streams {' '.join(map(str, args.streams))} --seconds {args.seconds:g} "
               f"--warmup {args.warmup:g} --scene {args.scene}"
               + (f" --motion {' '.join(args.motion)}" if args.motion else "")
               + (f" --cameras {' '.join(args.cameras)}" if args.cameras != ["together"] else "")
               + (f" --against {args.against}" if args.against else ""))
    lines = [
        f"### Live RTSP cameras, 1280×720 25 fps, {CEILING:g} analysed frames/s each (CPU defaults)",
        "",
        f"`{command}` (local GStreamer RTSP server on loopback, TCP, no re-encoding; {args.seconds:g} s "
        f"measured after {args.warmup:g} s of warm-up, each run in a fresh process. Cameras `together` serve "
        "the same scene at the same moment, so faces and motion reach all of them at once; cameras `apart` "
        "start the same clip at points spread evenly over it, as independent cameras would)",
        "",
        "| streams | cameras | code | motion | analysed frames/s per camera (min / mean) | fairness (min / mean) | "
        "decoded frames/s, slowest camera | frames meant for analysis dropped | capture→analysed p50 | p99 | "
        "analysed frames not detected (gating) | overloaded at the end | RTSP server CPU (of one core) | "
        "faces whose best moment was streamed | recall | best shot in window |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(row(code, r) for code, r in rows),
        "",
    ]
    for code, _ in codes:
        label = code if code != "this" else f"{revision}+"
        for motion, cameras in ((m, c) for m in gatings[code] for c in args.cameras):
            ours = [r for c, r in rows if c == label and r["motion"] == motion and r["cameras"] == cameras]
            sustained = [r["streams"] for r in ours if r["min_fps"] >= SUSTAINED_FPS and r["p99"] < 1.0]
            lines.append(f"- {label}, motion {motion or 'default'}, cameras {cameras}: sustained (every camera "
                         f"≥ {SUSTAINED_FPS:g} analysed frames/s, p99 < 1 s) **{max(sustained, default=0)} cameras**; "
                         f"lowest fairness {min(r['fairness'] for r in ours):.2f} (target ≥ 0.5).")
    lines += [
        "",
        f"`{revision}+` is this working tree; motion `default` is the revision's own default. Frames the "
        "sampler skips (20 of every 25) are not drops; drops are frames the sampler kept that the "
        "latest-frame-wins buffers discarded because analysis lagged. Fairness is the slowest camera's analysed "
        "rate over the mean (all cameras share one ceiling). Latencies are those of the worst camera (its last "
        "4096 frames, warm-up included). The RTSP server only repackets the H.264 file (no re-encoding); its CPU "
        "time is measured over each whole run. Recall: of the (camera, face) pairs whose best moment the camera "
        "streamed (from 1 s after its start to 1 s before the run ended), those with a best shot on the face; "
        "best shot in window: those whose best shot lies in the face's ground-truth best window.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("live", report)


if __name__ == "__main__":
    main()
