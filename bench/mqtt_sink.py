"""MQTT sink benchmark: sustained events/s and decision-to-PUBACK latency.

    python bench/mqtt_sink.py [--events 20000] [--rate 100] [--no-write]

Starts its own mosquitto on a free loopback port (persistence off, Debian's other
defaults), sends events with 10 KB JPEG crops through the same sink thread the pipeline
uses (QoS 1: each event is its crop on the retained snapshot topic plus its JSON, and
counts once the broker acknowledged both), and records the figures in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sink_load  # noqa: E402 - the folder is put on the path just above
from common import free_port  # noqa: E402


def mosquitto() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = mosquitto()
    if binary is None:
        sys.exit("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
                      f"log_dest file {workdir}/mosquitto.log\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sink_load.wait_for(process, port, "mosquitto")
    return process, port


def broker_version(binary: str | None) -> str:
    if binary is None:
        return "?"
    help_text = subprocess.run([binary, "-h"], capture_output=True, text=True).stdout
    return help_text.split("version", 1)[1].split()[0] if "version" in help_text else "?"


def main() -> None:
    args = sink_load.arguments(__doc__, events=20_000, seconds=20.0).parse_args()

    from fiqa_stream.sinks.config import MqttSinkConfig
    from fiqa_stream.sinks.mqtt import MqttSink

    def all_acknowledged(sink: MqttSink) -> None:
        if sink.delivered != args.events:
            sys.exit(f"only {sink.delivered} of {args.events} events were acknowledged")

    event = sink_load.template()
    with tempfile.TemporaryDirectory() as work:
        server, port = start_mosquitto(Path(work))
        try:
            config = MqttSinkConfig(url=f"mqtt://127.0.0.1:{port}", journal={"path": Path(work) / "journal.sqlite3"})
            # One retained snapshot topic per track: a thousand of them, not one per event.
            figures = sink_load.measure(lambda: MqttSink(config), args, event, tracks=1000, timeout=300,
                                        check=all_acknowledged)
        finally:
            server.kill()
            server.wait()
    report = "\n".join([
        f"### MQTT sink, 10 KB JPEG crops, QoS 1, local mosquitto {broker_version(mosquitto())} (no persistence)",
        "",
        f"`python bench/mqtt_sink.py --events {args.events} --rate {args.rate:g} --seconds {args.seconds:g}`"
        " (each event: its crop on the retained snapshot topic and its JSON, both acknowledged)",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| sustained throughput ({args.events} events, one per hand-over) "
        f"| **{figures.throughput:,.0f} events/s** | ≥ 2,000 |",
        f"| decision → both PUBACKs, p50 at {args.rate:g} events/s | {figures.p50_ms:.2f} ms | |",
        f"| decision → both PUBACKs, p99 at {args.rate:g} events/s | **{figures.p99_ms:.2f} ms** | |",
        f"| crop size | {len(event.crop_jpeg):,} bytes | |",
    ])
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("mqtt", report)


if __name__ == "__main__":
    main()
