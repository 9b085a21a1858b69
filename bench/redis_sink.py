"""Redis sink benchmark: sustained events/s and decision-to-acknowledged latency.

    python bench/redis_sink.py [--events 50000] [--rate 100] [--no-write]

Starts its own redis-server on a free loopback port (persistence off, as a cache-class
deployment would run it), sends events with 10 KB JPEG crops through the same sink
thread the pipeline uses, and records the figures in docs/BENCHMARKS.md.
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


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sink_load.wait_for(process, port, "redis-server")
    return process, port


def main() -> None:
    args = sink_load.arguments(__doc__, events=50_000, seconds=20.0).parse_args()

    from fiqa_stream.sinks.config import RedisSinkConfig
    from fiqa_stream.sinks.redis_streams import RedisSink

    event = sink_load.template()
    with tempfile.TemporaryDirectory() as work:
        server, port = start_redis(Path(work))
        try:
            config = RedisSinkConfig(url=f"redis://127.0.0.1:{port}/0", maxlen=100_000,
                                     journal={"path": Path(work) / "journal.sqlite3"})
            figures = sink_load.measure(lambda: RedisSink(config), args, event, timeout=120)
        finally:
            server.kill()
            server.wait()
    report = "\n".join([
        "### Redis sink, 10 KB JPEG crops, local redis-server 7 (no persistence)",
        "",
        f"`python bench/redis_sink.py --events {args.events} --rate {args.rate:g} --seconds {args.seconds:g}`",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| sustained throughput ({args.events} events, one per hand-over) "
        f"| **{figures.throughput:,.0f} events/s** | ≥ 5,000 |",
        f"| decision → XADD acknowledged, p50 at {args.rate:g} events/s | {figures.p50_ms:.2f} ms | |",
        f"| decision → XADD acknowledged, p99 at {args.rate:g} events/s | **{figures.p99_ms:.2f} ms** | < 20 ms |",
        f"| crop size | {len(event.crop_jpeg):,} bytes | |",
    ])
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("redis", report)


if __name__ == "__main__":
    main()
