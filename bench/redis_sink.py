"""Redis sink benchmark: sustained events/s and decision-to-acknowledged latency.

    python bench/redis_sink.py [--events 50000] [--rate 100] [--no-write]

Starts its own redis-server on a free loopback port (persistence off, as a cache-class
deployment would run it), sends events with 10 KB JPEG crops through the same sink
thread the pipeline uses, and records the figures in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def jpeg_of_about(size: int) -> bytes:
    rng = np.random.default_rng(0)
    side = 64
    while True:
        image = cv2.GaussianBlur(rng.integers(0, 255, (side, side, 3), dtype=np.uint8), (3, 3), 0)
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        if len(data) >= size:
            return data
        side += 8


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    sys.exit("redis-server did not start")


class AckClock:
    """Wraps a sink and notes, per event, when its publish call returned (Redis acknowledged)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.latencies_ms: list[float] = []

    def publish(self, events: Sequence) -> None:
        self.inner.publish(events)
        now = datetime.now(UTC)
        self.latencies_ms.extend((now - e.decided_at).total_seconds() * 1000 for e in events)

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="events in the throughput run")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from fiqa_stream.sinks.config import RedisSinkConfig
    from fiqa_stream.sinks.redis_streams import RedisSink
    from fiqa_stream.stream.dispatch import SinkDispatcher
    from fiqa_stream.types import BestShot, EventKind

    crop = jpeg_of_about(10_000)
    template = BestShot(
        event_id="bench:0:0", run_id="bench", kind=EventKind.FINAL, source="bench", track_id=0, frame_index=0, pts=0.0,
        captured_at=None, first_seen=0.0, last_seen=1.0, box=(10.0, 20.0, 110.0, 140.0),
        landmarks=((40.0, 60.0), (80.0, 60.0), (60.0, 80.0), (45.0, 100.0), (75.0, 100.0)), quality=0.8,
        components={"sharpness": 0.8, "exposure": 0.7, "pose": 0.9, "size": 1.0, "confidence": 0.95},
        model="heuristic-1", crop_jpeg=crop, sightings=30, decided_at=datetime.now(UTC),
    )
    with tempfile.TemporaryDirectory() as work:
        server, port = start_redis(Path(work))
        try:
            config = RedisSinkConfig(url=f"redis://127.0.0.1:{port}/0", maxlen=100_000,
                                     journal={"path": Path(work) / "journal.sqlite3"})
            # Throughput: events as fast as the pipeline could hand them over, one per put.
            dispatcher = SinkDispatcher(RedisSink(config), capacity=1024)
            started = time.perf_counter()
            for n in range(args.events):
                dispatcher.put([replace(template, event_id=f"bench:{n}:0", track_id=n)])
            dispatcher.close(timeout=120)
            throughput = args.events / (time.perf_counter() - started)

            # Latency: a steady rate, decision time stamped when the event is made.
            clock = AckClock(RedisSink(config))
            dispatcher = SinkDispatcher(clock, capacity=1024)
            interval = 1.0 / args.rate
            next_at = time.perf_counter()
            for n in range(int(args.rate * args.seconds)):
                next_at += interval
                time.sleep(max(0.0, next_at - time.perf_counter()))
                dispatcher.put([replace(template, event_id=f"lat:{n}:0", decided_at=datetime.now(UTC))])
            dispatcher.close(timeout=60)
        finally:
            server.kill()
            server.wait()
    latencies = sorted(clock.latencies_ms)
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    report = "\n".join([
        "### Redis sink, 10 KB JPEG crops, local redis-server 7 (no persistence)",
        "",
        f"`python bench/redis_sink.py --events {args.events} --rate {args.rate:g} --seconds {args.seconds:g}`",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| sustained throughput ({args.events} events, one per hand-over) "
        f"| **{throughput:,.0f} events/s** | ≥ 5,000 |",
        f"| decision → XADD acknowledged, p50 at {args.rate:g} events/s | {p50:.2f} ms | |",
        f"| decision → XADD acknowledged, p99 at {args.rate:g} events/s | **{p99:.2f} ms** | < 20 ms |",
        f"| crop size | {len(crop):,} bytes | |",
    ])
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("redis", report)


if __name__ == "__main__":
    main()
