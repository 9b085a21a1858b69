"""Webhook sink benchmark: sustained events/s and decision-to-2xx latency.

    python bench/webhook_sink.py [--events 5000] [--rate 100] [--seconds 10] [--no-write]

Starts its own receiver in a separate process on a free loopback port (http.server,
HTTP/1.1 keep-alive, verifying every HMAC signature and answering 204), sends signed
JSON events with 10 KB JPEG crops through the same sink thread the pipeline uses, and
records the figures in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sink_load  # noqa: E402 - after the path set-up
from common import free_port  # noqa: E402

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
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), SECRET], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        sys.exit("the receiver did not start")
    return process, port


def main() -> None:
    parser = sink_load.arguments(__doc__, events=5_000, seconds=10.0)
    parser.add_argument("--format", choices=("json", "multipart"), default="json")
    args = parser.parse_args()

    from fiqa_stream.sinks.config import WebhookSinkConfig
    from fiqa_stream.sinks.webhook import WebhookSink

    def all_delivered(sink: WebhookSink) -> None:
        if sink.delivered != args.events or sink.rejected or sink.journal_depth:
            sys.exit(f"not all delivered: {sink.delivered} delivered, {sink.rejected} refused")

    ids = "{phase}:r:{n}:0"
    event = sink_load.template(run_id="r", ids=ids)
    receiver, port = start_receiver()
    try:
        with tempfile.TemporaryDirectory() as work:
            config = WebhookSinkConfig(url=f"http://127.0.0.1:{port}/hook", format=args.format, secret=SECRET,
                                       journal={"path": Path(work) / "journal.sqlite3"})
            figures = sink_load.measure(lambda: WebhookSink(config), args, event, ids=ids, timeout=600,
                                        check=all_delivered)
    finally:
        receiver.kill()
        receiver.wait()
        if receiver.stdout:
            receiver.stdout.close()
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
        f"| sustained throughput ({args.events} events, one per hand-over) | **{figures.throughput:,.0f} events/s** |",
        f"| decision → 2xx answered, p50 at {args.rate:g} events/s | {figures.p50_ms:.2f} ms |",
        f"| decision → 2xx answered, p99 at {args.rate:g} events/s | **{figures.p99_ms:.2f} ms** |",
        f"| crop size | {len(event.crop_jpeg):,} bytes |",
    ])
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("webhook", report)


if __name__ == "__main__":
    main()
