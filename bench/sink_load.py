"""Shared by the sink benchmarks (redis_sink.py, mqtt_sink.py, webhook_sink.py): their
command line, the event they send (10 KB JPEG crop), a free loopback port for their
server, and the two runs they measure through the sink thread the pipeline uses.

Throughput: ``--events`` events handed over one per ``SinkDispatcher.put`` as fast as
possible, then ``close``; events/s over the whole. Latency: ``--rate`` events/s for
``--seconds``, each stamped ``decided_at`` when made; milliseconds from there to the
return of the sink's ``publish`` (the destination acknowledged), p50 and p99.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from fiqa_stream.types import BestShot

CROP_BYTES = 10_000


def arguments(doc: str | None, events: int, seconds: float) -> argparse.ArgumentParser:
    """The options every sink benchmark takes, with its own defaults; a script adds its own."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=events, help="events in the throughput run")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=seconds, help="length of the latency run")
    parser.add_argument("--no-write", action="store_true")
    return parser


def jpeg_of_about(size: int) -> bytes:
    rng = np.random.default_rng(0)
    side = 64
    while True:
        image = cv2.GaussianBlur(rng.integers(0, 255, (side, side, 3), dtype=np.uint8), (3, 3), 0)
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        if len(data) >= size:
            return data
        side += 8


def template(run_id: str = "bench", ids: str = "{phase}:{n}:0") -> BestShot:
    """The event both runs copy: a final best shot with a 10 KB crop. ``ids`` makes the event
    ids, from the run's phase ("bench", "lat") and the event's number."""
    from fiqa_stream.types import BestShot, EventKind

    return BestShot(
        event_id=ids.format(phase="bench", n=0), run_id=run_id, kind=EventKind.FINAL, source="bench", track_id=0,
        frame_index=0, pts=0.0, captured_at=None, first_seen=0.0, last_seen=1.0, box=(10.0, 20.0, 110.0, 140.0),
        landmarks=((40.0, 60.0), (80.0, 60.0), (60.0, 80.0), (45.0, 100.0), (75.0, 100.0)), quality=0.8,
        components={"sharpness": 0.8, "exposure": 0.7, "pose": 0.9, "size": 1.0, "confidence": 0.95},
        model="heuristic-1", crop_jpeg=jpeg_of_about(CROP_BYTES), sightings=30, decided_at=datetime.now(UTC),
    )


def wait_for(process: subprocess.Popen[bytes], port: int, name: str) -> None:
    """Waits (up to 10 s) until ``port`` takes connections; exits naming ``name`` if it never does."""
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    sys.exit(f"{name} did not start")


class AckClock:
    """Wraps a sink and notes, per event, when its publish call returned (the destination acknowledged)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.latencies_ms: list[float] = []

    def publish(self, events: Sequence[BestShot]) -> None:
        self.inner.publish(events)
        now = datetime.now(UTC)
        self.latencies_ms.extend((now - e.decided_at).total_seconds() * 1000 for e in events)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Figures:
    throughput: float  # events/s
    p50_ms: float
    p99_ms: float


def measure(
    make_sink: Callable[[], Any], args: argparse.Namespace, event: BestShot, *, ids: str = "{phase}:{n}:0",
    tracks: int | None = None, timeout: float = 120, check: Callable[[Any], None] | None = None,
) -> Figures:
    """Both runs, each on a new sink from ``make_sink``. In the throughput run event ``n`` is
    track ``n`` (modulo ``tracks`` when given); ``check`` looks at its sink once it is closed."""
    from fiqa_stream.stream.dispatch import SinkDispatcher

    # Throughput: events as fast as the pipeline could hand them over, one per put.
    sink = make_sink()
    dispatcher = SinkDispatcher(sink, capacity=1024)
    started = time.perf_counter()
    for n in range(args.events):
        track = n if tracks is None else n % tracks
        dispatcher.put([replace(event, event_id=ids.format(phase="bench", n=n), track_id=track)])
    dispatcher.close(timeout=timeout)
    throughput = args.events / (time.perf_counter() - started)
    if check is not None:
        check(sink)

    # Latency: a steady rate, decision time stamped when the event is made.
    clock = AckClock(make_sink())
    dispatcher = SinkDispatcher(clock, capacity=1024)
    interval = 1.0 / args.rate
    next_at = time.perf_counter()
    for n in range(int(args.rate * args.seconds)):
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
        dispatcher.put([replace(event, event_id=ids.format(phase="lat", n=n), decided_at=datetime.now(UTC))])
    dispatcher.close(timeout=60)
    latencies = sorted(clock.latencies_ms)
    return Figures(throughput, statistics.median(latencies), latencies[int(0.99 * (len(latencies) - 1))])
