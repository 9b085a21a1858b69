"""Live streams benchmark: how many 720p RTSP cameras at 5 analysed frames/s one machine sustains.

    python bench/live.py [--streams 1 2 4 6 8] [--seconds 20] [--no-write]

Serves a composed 1280×720 25 fps clip with real faces from a local GStreamer RTSP
server (one mount per camera; needs Debian's gir1.2-gst-rtsp-server-1.0 and
python3-gi), runs the pipeline with every camera at ``fps: 5``, and reports per
stream count the analysed frames/s per stream, the share of decoded frames dropped
by the latest-frame-wins buffers, and p50/p99 capture-to-analysed latency.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(clip: Path, streams: int, seconds: float, warmup: float) -> dict:
    from fiqa_stream.config import parse_config
    from fiqa_stream.stream.pipeline import Pipeline, SourceStats

    port = free_port()
    mounts = [f"/cam{n}" for n in range(streams)]
    server = subprocess.Popen(
        ["/usr/bin/python3", str(ROOT / "scripts" / "rtsp_test_server.py"), "--port", str(port),
         *[arg for mount in mounts for arg in ("--mount", mount)], *[str(clip)] * streams],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        if server.stdout is None or server.stdout.readline().strip() != "ready":
            sys.exit("the RTSP server did not start (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi)")
        with tempfile.TemporaryDirectory() as out:
            config = parse_config({
                "sources": [{"url": f"rtsp://127.0.0.1:{port}{m}", "id": m.strip("/"), "fps": 5} for m in mounts],
                "sinks": [{"type": "directory", "path": out, "fsync": False}],
                "pipeline": {"progress": "off"},
            })
            snapshots: list[list[SourceStats]] = []
            stop = threading.Event()
            pipeline = Pipeline(config, on_progress=lambda s: snapshots.append(
                [SourceStats(**{f: getattr(x, f) for f in SourceStats.__slots__}) for x in s]), progress_interval=0.5)
            runner = threading.Thread(target=pipeline.run, args=(stop,))
            runner.start()
            time.sleep(warmup)
            before = snapshots[-1]
            time.sleep(seconds)
            after = snapshots[-1]
            stop.set()
            runner.join(60)
    finally:
        server.kill()
        server.wait()
        if server.stdout:
            server.stdout.close()
    analysed = [(a.analysed - b.analysed) / seconds for a, b in zip(after, before, strict=True)]
    decoded = sum(a.decoded - b.decoded for a, b in zip(after, before, strict=True))
    dropped = sum(a.dropped - b.dropped for a, b in zip(after, before, strict=True))
    p50 = max(s.latency_p50 or 0.0 for s in after)
    p99 = max(s.latency_p99 or 0.0 for s in after)
    return {"streams": streams, "min_fps": min(analysed), "mean_fps": sum(analysed) / streams,
            "drop_rate": dropped / max(1, decoded), "p50": p50, "p99": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from fiqa_stream.media.clips import compose_face_clip

    rows = []
    with tempfile.TemporaryDirectory() as work:
        # Longer than a whole measurement: the test server ends the stream at the end of the
        # file (its loop restarts it), and a camera's reconnection would count against analysis.
        clip = compose_face_clip(Path(work) / "live.mp4", width=1280, height=720, fps=25.0,
                                 seconds=args.warmup + args.seconds + 10, faces=3, seed=2)
        for streams in args.streams:
            result = measure(clip.path, streams, args.seconds, args.warmup)
            print(result, flush=True)
            rows.append(result)
    sustained = [r["streams"] for r in rows if r["min_fps"] >= 4.75 and r["p99"] < 1.0]
    lines = [
        "### Live RTSP cameras, 1280×720 25 fps, 5 analysed frames/s each (CPU defaults)",
        "",
        f"`python bench/live.py --streams {' '.join(map(str, args.streams))} --seconds {args.seconds:g}` "
        "(local GStreamer RTSP server on loopback, TCP; every stream decoded in full, 5 frames/s analysed)",
        "",
        "| streams | analysed frames/s per stream (min / mean) | decoded frames dropped | "
        "capture→analysed p50 | p99 |",
        "|---|---|---|---|---|",
        *(f"| {r['streams']} | {r['min_fps']:.2f} / {r['mean_fps']:.2f} | {100 * r['drop_rate']:.1f}% "
          f"| {1000 * r['p50']:.0f} ms | {1000 * r['p99']:.0f} ms |" for r in rows),
        "",
        f"Sustained (every stream ≥ 4.75 analysed frames/s and p99 < 1 s): **{max(sustained, default=0)} streams** "
        "(target: at least 4). Frames the sampler skips (20 of every 25) are not drops; drops are frames "
        "the latest-frame-wins buffers discarded because analysis lagged.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("live", report)


if __name__ == "__main__":
    main()
