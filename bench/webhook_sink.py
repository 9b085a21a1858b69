"""Webhook sink benchmark: sustained events/s and decision-to-2xx latency.

    python bench/webhook_sink.py [--events 5000] [--rate 100] [--seconds 10] [--no-write]

Starts its own receiver in a separate process on a free loopback port (http.server,
HTTP/1.1 keep-alive, verifying every HMAC signature and answering 204), sends signed
JSON events with 10 KB JPEG crops through the same sink thread the pipeline uses, and
records the figures in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_sink import AckClock, jpeg_of_about  # noqa: E402 - after the path set-up

SECRET = "bench-secret"
RECEIVER = """
import hashlib, hmac, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = sys.argv[2].encode()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(self.headers.get("X-Fiqa-Signature", ""), expected)
        self.send_response(204 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
"""


def start_receiver() -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), SECRET], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        sys.exit("the receiver did not start")
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000, help="events in the throughput run")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--format", choices=("json", "multipart"), default="json")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from fiqa_stream.sinks.config import WebhookSinkConfig
    from fiqa_stream.sinks.webhook import WebhookSink
    from fiqa_stream.stream.dispatch import SinkDispatcher
    from fiqa_stream.types import BestShot, EventKind

    crop = jpeg_of_about(10_000)
    template = BestShot(
        event_id="bench:r:0:0", run_id="r", kind=EventKind.FINAL, source="bench", track_id=0, frame_index=0, pts=0.0,
        captured_at=None, first_seen=0.0, last_seen=1.0, box=(10.0, 20.0, 110.0, 140.0),
        landmarks=((40.0, 60.0), (80.0, 60.0), (60.0, 80.0), (45.0, 100.0), (75.0, 100.0)), quality=0.8,
        components={"sharpness": 0.8, "exposure": 0.7, "pose": 0.9, "size": 1.0, "confidence": 0.95},
        model="heuristic-1", crop_jpeg=crop, sightings=30, decided_at=datetime.now(UTC),
    )
    receiver, port = start_receiver()
    try:
        with tempfile.TemporaryDirectory() as work:
            config = WebhookSinkConfig(url=f"http://127.0.0.1:{port}/hook", format=args.format, secret=SECRET,
                                       journal={"path": Path(work) / "journal.sqlite3"})
            # Throughput: events as fast as the pipeline could hand them over, one per put.
            sink = WebhookSink(config)
            dispatcher = SinkDispatcher(sink, capacity=1024)
            started = time.perf_counter()
            for n in range(args.events):
                dispatcher.put([replace(template, event_id=f"bench:r:{n}:0", track_id=n)])
            dispatcher.close(timeout=600)
            throughput = args.events / (time.perf_counter() - started)
            if sink.delivered != args.events or sink.rejected or sink.journal_depth:
                sys.exit(f"not all delivered: {sink.delivered} delivered, {sink.rejected} refused")

            # Latency: a steady rate, decision time stamped when the event is made.
            clock = AckClock(WebhookSink(config))
            dispatcher = SinkDispatcher(clock, capacity=1024)
            interval = 1.0 / args.rate
            next_at = time.perf_counter()
            for n in range(int(args.rate * args.seconds)):
                next_at += interval
                time.sleep(max(0.0, next_at - time.perf_counter()))
                dispatcher.put([replace(template, event_id=f"lat:r:{n}:0", decided_at=datetime.now(UTC))])
            dispatcher.close(timeout=60)
    finally:
        receiver.kill()
        receiver.wait()
        if receiver.stdout:
            receiver.stdout.close()
    latencies = sorted(clock.latencies_ms)
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    report = "\n".join([
        f"### Webhook sink, signed {args.format} with 10 KB JPEG crops, local http.server receiver (keep-alive)",
        "",
        f"`python bench/webhook_sink.py --events {args.events} --rate {args.rate:g} --seconds {args.seconds:g}"
        + (f" --format {args.format}`" if args.format != "json" else "`"),
        "",
        "One request at a time per sink; the receiver (Python's http.server in its own process) verifies each",
        "HMAC signature and answers 204, so its own cost is part of the figure.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| sustained throughput ({args.events} events, one per hand-over) | **{throughput:,.0f} events/s** |",
        f"| decision → 2xx answered, p50 at {args.rate:g} events/s | {p50:.2f} ms |",
        f"| decision → 2xx answered, p99 at {args.rate:g} events/s | **{p99:.2f} ms** |",
        f"| crop size | {len(crop):,} bytes |",
    ])
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("webhook", report)


if __name__ == "__main__":
    main()
