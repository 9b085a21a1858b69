"""MQTT sink benchmark: sustained events/s and decision-to-PUBACK latency.

    python bench/mqtt_sink.py [--events 20000] [--rate 100] [--no-write]

Starts its own mosquitto on a free loopback port (persistence off, Debian's other
defaults), sends events with 10 KB JPEG crops through the same sink thread the pipeline
uses (QoS 1: each event is its crop on the retained snapshot topic plus its JSON, and
counts once the broker acknowledged both), and records the figures in docs/BENCHMARKS.md.
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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_sink import AckClock, jpeg_of_about  # noqa: E402 - the folder is put on the path just above


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if binary is None:
        sys.exit("mosquitto is not installed (apt-get install mosquitto)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
                      f"log_dest file {workdir}/mosquitto.log\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    sys.exit("mosquitto did not start")


def broker_version(binary: str | None) -> str:
    if binary is None:
        return "?"
    help_text = subprocess.run([binary, "-h"], capture_output=True, text=True).stdout
    return help_text.split("version", 1)[1].split()[0] if "version" in help_text else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events in the throughput run")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from fiqa_stream.sinks.config import MqttSinkConfig
    from fiqa_stream.sinks.mqtt import MqttSink
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
        server, port = start_mosquitto(Path(work))
        try:
            config = MqttSinkConfig(url=f"mqtt://127.0.0.1:{port}", journal={"path": Path(work) / "journal.sqlite3"})
            # Throughput: events as fast as the pipeline could hand them over, one per put.
            sink = MqttSink(config)
            dispatcher = SinkDispatcher(sink, capacity=1024)
            started = time.perf_counter()
            for n in range(args.events):
                dispatcher.put([replace(template, event_id=f"bench:{n}:0", track_id=n % 1000)])
            dispatcher.close(timeout=300)
            throughput = args.events / (time.perf_counter() - started)
            if sink.delivered != args.events:
                sys.exit(f"only {sink.delivered} of {args.events} events were acknowledged")

            # Latency: a steady rate, decision time stamped when the event is made.
            clock = AckClock(MqttSink(config))
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
    version = broker_version(shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin"))
    report = "\n".join([
        f"### MQTT sink, 10 KB JPEG crops, QoS 1, local mosquitto {version} (no persistence)",
        "",
        f"`python bench/mqtt_sink.py --events {args.events} --rate {args.rate:g} --seconds {args.seconds:g}`"
        " (each event: its crop on the retained snapshot topic and its JSON, both acknowledged)",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| sustained throughput ({args.events} events, one per hand-over) "
        f"| **{throughput:,.0f} events/s** | ≥ 2,000 |",
        f"| decision → both PUBACKs, p50 at {args.rate:g} events/s | {p50:.2f} ms | |",
        f"| decision → both PUBACKs, p99 at {args.rate:g} events/s | **{p99:.2f} ms** | |",
        f"| crop size | {len(crop):,} bytes | |",
    ])
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("mqtt", report)


if __name__ == "__main__":
    main()
