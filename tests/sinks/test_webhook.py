"""Webhook sink against a real HTTP server on a loopback port whose answers each test
scripts: down, 500s, 408/429, a 400, a slow answer; what arrives, in which order, signed
how, and what is counted."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import hmac
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.errors import ConfigError, SinkError
from fiqa_stream.media.clips import ClipTruth
from fiqa_stream.sinks import build_sink
from fiqa_stream.sinks.config import WebhookSinkConfig
from fiqa_stream.sinks.events import event_fields
from fiqa_stream.sinks.webhook import WebhookSink
from fiqa_stream.stream.metrics import MetricsServer, PipelineMetrics
from fiqa_stream.stream.workers import shard_configs
from fiqa_stream.types import BestShot, EventKind

SECRET = "hm4c-k3y!"
TOKEN = "t0ken-s3cret"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def crop_jpeg(seed: int, size: int = 64) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def event(n: int, source: str = "cam") -> BestShot:
    return BestShot(
        event_id=f"{source}:r1:{n}:0", run_id="r1", kind=EventKind.FINAL, source=source, track_id=n,
        frame_index=10 * n, pts=n / 25, captured_at=datetime(2026, 3, 4, 5, 6, 7, 250000, tzinfo=UTC),
        first_seen=0.5, last_seen=n / 25 + 1, box=(1.5, 2.5, 30.0, 40.0), landmarks=((5.0, 6.0),) * 5,
        quality=0.75, components={"sharpness": 0.5, "pose": 1.0}, model="heuristic-1", crop_jpeg=crop_jpeg(n),
        sightings=12, decided_at=datetime.now(UTC),
    )


def ids(numbers: range | list[int]) -> list[str]:
    return [f"cam:r1:{n}:0" for n in numbers]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that refuses the certificate fails the handshake; the test looks at the sink


@dataclass(frozen=True)
class Request:
    """One request as the endpoint saw it, and the status it answered (None: hung up)."""

    event_id: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    at: float


class Endpoint:
    """A real ``ThreadingHTTPServer`` on a free loopback port, keep-alive, answering by a rule.

    ``rule(request_number, event_id) -> status`` is set by the test; ``stop()`` takes it
    down (connections kept alive are hung up on too) and ``start()`` brings it back on
    the same port.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Request] = []
        self.rule: Callable[[int, str], int] = lambda n, event_id: 200
        self.delay = 0.0
        self.retry_after: str | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/fiqa?via=test"

    def start(self, tls: ssl.SSLContext | None = None) -> Endpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if getattr(self.server, "down", False):
                    self.close_connection = True  # gone: hang up without an answer
                    endpoint._note(self, body, None)
                    return
                with endpoint._lock:
                    status = endpoint.rule(len(endpoint.requests), self.headers.get("X-Fiqa-Event-Id", ""))
                if endpoint.delay:
                    time.sleep(endpoint.delay)
                endpoint._note(self, body, status)
                answer = b"" if status < 300 else f"status {status} for this\nevent".encode()
                self.send_response(status)
                if status in (429, 503) and endpoint.retry_after is not None:
                    self.send_header("Retry-After", endpoint.retry_after)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server API
                pass

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.down = True  # type: ignore[attr-defined]
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _note(self, handler: BaseHTTPRequestHandler, body: bytes, status: int | None) -> None:
        with self._lock:
            self.requests.append(Request(handler.headers.get("X-Fiqa-Event-Id", ""), dict(handler.headers.items()),
                                         body, status, time.monotonic()))

    def accepted(self) -> list[str]:
        with self._lock:
            return [r.event_id for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def answered(self, event_id: str) -> list[int | None]:
        with self._lock:
            return [r.status for r in self.requests if r.event_id == event_id]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.stop()


def sink_config(url: str, tmp_path: Path, **options: Any) -> WebhookSinkConfig:
    settings: dict[str, Any] = {"timeout": 2.0, "retries": 1, "backoff": 0.05, "max_backoff": 0.4,
                                "secret": SECRET, **options}
    return WebhookSinkConfig(url=url, journal={"path": tmp_path / "webhook.sqlite3"}, **settings)


def webhook(url: str, tmp_path: Path, **options: Any) -> WebhookSink:
    sink = build_sink(sink_config(url, tmp_path, **options))
    assert isinstance(sink, WebhookSink)
    return sink


def wait_for(condition: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {seconds:.0f} s")
        time.sleep(0.02)


def signed(request: Request, key: str = SECRET) -> bool:
    """What a receiver does: HMAC-SHA256 of the exact body, compared in constant time."""
    expected = "sha256=" + hmac.new(key.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("X-Fiqa-Signature", ""), expected)


def test_each_event_arrives_as_json_with_the_documented_fields_its_crop_and_a_valid_signature(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    endpoint.start()
    originals = [event(n) for n in range(3)]
    with webhook(endpoint.url, tmp_path, token=TOKEN) as sink:
        sink.publish(originals)
    assert endpoint.accepted() == ids(range(3))
    for request, original in zip(endpoint.requests, originals, strict=True):
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["X-Fiqa-Event-Id"] == original.event_id
        assert signed(request)
        body = json.loads(request.body)
        assert set(body) == set(event_fields(original)) | {"crop_format", "crop"}
        assert {k: v for k, v in body.items() if k not in ("crop", "crop_format")} == event_fields(original)
        assert body["crop_format"] == "jpeg" and base64.b64decode(body["crop"]) == original.crop_jpeg
    assert sink.delivered == 3 and sink.rejected == 0 and sink.failed_attempts == 0


def test_a_body_altered_on_the_way_fails_verification(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.start()
    with webhook(endpoint.url, tmp_path) as sink:
        sink.publish([event(1)])
    [request] = endpoint.requests
    assert signed(request)
    assert not signed(replace(request, body=request.body.replace(b'"quality":0.75', b'"quality":0.95')))
    assert not signed(request, key="another key")


def test_multipart_carries_the_event_json_and_the_crop_jpeg_as_parts(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.start()
    original = event(4)
    with webhook(endpoint.url, tmp_path, format="multipart") as sink:
        sink.publish([original])
    [request] = endpoint.requests
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert signed(request)
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    event_part, crop_part = message.iter_parts()
    assert event_part.get_param("name", header="content-disposition") == "event"
    assert json.loads(event_part.get_content()) == {**event_fields(original), "crop_format": "jpeg"}
    assert crop_part.get_param("name", header="content-disposition") == "crop"
    assert crop_part.get_filename() == "r1-000004-0-final.jpg"
    assert crop_part.get_content_type() == "image/jpeg" and crop_part.get_content() == original.crop_jpeg


def test_credentials_in_the_url_are_sent_as_basic_auth(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.start()
    with webhook(f"http://fiqa:p%40ss@127.0.0.1:{endpoint.port}/in", tmp_path) as sink:
        sink.publish([event(1)])
    [request] = endpoint.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"fiqa:p@ss").decode()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl(1)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_https_with_an_untrusted_certificate_waits_in_the_journal_until_its_ca_is_configured(
    endpoint: Endpoint, tmp_path: Path, certificate: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    endpoint.start(tls=context)
    url = f"https://127.0.0.1:{endpoint.port}/in"
    with caplog.at_level(logging.WARNING):
        untrusting = webhook(url, tmp_path, retries=0)
        untrusting.publish([event(1)])
        untrusting.close()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text and endpoint.requests == []
    with webhook(url, tmp_path, ca_file=cert) as trusting:  # the next start replays the journal
        wait_for(lambda: trusting.journal_depth == 0)
        trusting.publish([event(2)])
    assert endpoint.accepted() == ids([1, 2]) and all(signed(r) for r in endpoint.requests)


def test_a_ca_file_that_cannot_be_read_is_a_clear_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=r"webhook sink https://127\.0\.0\.1:1/: ca_file '.*nope\.pem': cannot load"):
        webhook("https://127.0.0.1:1/", tmp_path, ca_file=tmp_path / "nope.pem")


def test_an_endpoint_down_at_start_gets_every_event_in_order_once_it_is_up(
    endpoint: Endpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = webhook(endpoint.url, tmp_path)
    with caplog.at_level(logging.WARNING):
        sink.publish([event(0)])  # connection refused twice (1 retry): spilled
    assert "Connection refused after 2 attempt(s); 1 event(s) spilled to journal" in caplog.text
    sink.publish([event(n) for n in range(1, 10)])  # behind it, straight into the journal
    assert sink.journal_depth == 10 and sink.delivered == 0
    time.sleep(1.0)  # the replay thread backs off while the endpoint stays away
    endpoint.start()
    wait_for(lambda: sink.journal_depth == 0)
    sink.publish([event(n) for n in range(10, 15)])  # direct again
    sink.close()
    assert endpoint.accepted() == ids(range(15))  # in order, each once: nothing arrived while down
    assert all(signed(r) for r in endpoint.requests) and sink.delivered == 15


def test_500s_for_a_while_are_retried_then_journaled_and_delivered_in_order_once_the_endpoint_recovers(
    endpoint: Endpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failing = threading.Event()
    failing.set()
    endpoint.rule = lambda n, event_id: 500 if failing.is_set() else 200
    endpoint.start()
    sink = webhook(endpoint.url, tmp_path)
    with caplog.at_level(logging.WARNING):
        sink.publish([event(n) for n in range(3)])  # event 0: 500, retried, 500: spilled with 1 and 2
    assert "HTTP 500 Internal Server Error: status 500 for this event after 2 attempt(s); 3 event(s) spilled" in (
        caplog.text)  # one try and one retry (the replay thread may have tried once more since)
    sink.publish([event(3)])
    assert sink.journal_depth == 4
    wait_for(lambda: len(endpoint.requests) >= 5)  # the replay thread tries again, and backs off
    assert {r.event_id for r in endpoint.requests} == set(ids([0]))  # never past the head of the journal
    failing.clear()
    wait_for(lambda: sink.journal_depth == 0)
    sink.close()
    assert endpoint.accepted() == ids(range(4))
    assert sink.failed_attempts == len(endpoint.requests) - 4 and sink.rejected == 0


def test_a_400_is_not_retried_it_is_counted_and_logged_and_the_events_behind_it_go_on(
    endpoint: Endpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.rule = lambda n, event_id: 400 if event_id == ids([2])[0] else 200
    endpoint.start()
    sink = webhook(f"http://hook:pa55word@127.0.0.1:{endpoint.port}/in", tmp_path, token=TOKEN)
    metrics = PipelineMetrics()
    metrics.watch_sinks([sink])
    server = MetricsServer(metrics, "127.0.0.1", 0, down_after=10.0)
    try:
        with caplog.at_level(logging.DEBUG):
            sink.publish([event(n) for n in range(5)])
        with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5) as response:
            scrape = response.read().decode()
    finally:
        server.close()
        sink.close()
    assert endpoint.answered(ids([2])[0]) == [400]  # once: not retried, not journaled
    assert endpoint.accepted() == ids([0, 1, 3, 4])
    assert sink.rejected == 1 and sink.journal_depth == 0
    assert 'fiqa_sink_rejected_total{sink="webhook"} 1.0' in scrape
    assert 'fiqa_sink_journal_depth{sink="webhook"} 0.0' in scrape
    [line] = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert line == (f"webhook sink http://hook:***@127.0.0.1:{endpoint.port}/in: event cam:r1:2:0 refused with "
                    "HTTP 400 Bad Request: status 400 for this event; not retried (1 refused so far)")
    assert not any(secret in caplog.text for secret in ("pa55word", TOKEN, SECRET))


def test_408_and_429_are_retried_and_a_retry_after_is_waited_for(endpoint: Endpoint, tmp_path: Path) -> None:
    script = iter([429, 408])
    endpoint.rule = lambda n, event_id: next(script, 200)
    endpoint.retry_after = "1"
    endpoint.start()
    with webhook(endpoint.url, tmp_path, retries=2, max_backoff=5.0) as sink:
        sink.publish([event(1)])
        assert sink.journal_depth == 0
    assert [r.status for r in endpoint.requests] == [429, 408, 200]
    first, second, _ = endpoint.requests
    assert second.at - first.at >= 0.9  # Retry-After: 1, not the 0.05 s backoff
    assert endpoint.accepted() == ids([1]) and sink.failed_attempts == 2


def test_a_timeout_spills_the_event_and_a_late_answer_makes_a_duplicate_that_event_id_removes(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    endpoint.delay = 1.0
    endpoint.start()
    sink = webhook(endpoint.url, tmp_path, timeout=0.3, retries=0)
    started = time.monotonic()
    sink.publish([event(1), event(2)])
    assert time.monotonic() - started < 1.0  # gave up after the timeout, did not wait for the answer
    assert sink.journal_depth == 2
    endpoint.delay = 0.0
    wait_for(lambda: sink.journal_depth == 0)
    sink.close()
    # The endpoint did process the first request after the sink stopped waiting: at-least-once.
    assert endpoint.accepted()[0] == ids([1])[0]
    assert list(dict.fromkeys(endpoint.accepted())) == ids([1, 2])


def test_an_outage_mid_stream_loses_nothing_and_keeps_order(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.start()
    sink = webhook(endpoint.url, tmp_path)
    produced: list[str] = []

    def produce() -> None:
        for n in range(150):
            sink.publish([event(n)])
            produced.append(ids([n])[0])
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_for(lambda: len(produced) >= 30)
    endpoint.stop()  # keep-alive connections are hung up on too
    time.sleep(1.5)
    during_outage = len(produced)
    endpoint.start()
    producer.join(60)
    wait_for(lambda: sink.journal_depth == 0)
    sink.close()
    assert during_outage > 40 and len(produced) == 150
    assert list(dict.fromkeys(endpoint.accepted())) == produced  # de-duplicated by event_id: all, in order
    assert all(signed(r) for r in endpoint.requests)


def test_events_left_in_the_journal_at_close_are_sent_first_on_the_next_start(
    endpoint: Endpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = webhook(endpoint.url, tmp_path)
    sink.publish([event(n) for n in range(5)])
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        sink.close()
    assert time.monotonic() - started < 3.0  # no drain wait while the endpoint is away
    assert f"5 events stay in journal {tmp_path / 'webhook.sqlite3'}" in caplog.text
    endpoint.start()
    with webhook(endpoint.url, tmp_path) as again:
        again.publish([event(5)])
        wait_for(lambda: again.journal_depth == 0)
    assert endpoint.accepted() == ids(range(6))


def test_the_journal_survives_a_kill_9_of_fiqa_stream_and_is_replayed_on_the_next_start(
    endpoint: Endpoint, tmp_path: Path, publish_then_kill_9: Callable[[str, int], None]
) -> None:
    publish_then_kill_9(
        f"from test_webhook import event, webhook\nsink = webhook({endpoint.url!r}, Path({str(tmp_path)!r}))", 20,
    )
    endpoint.start()
    with webhook(endpoint.url, tmp_path) as sink:
        wait_for(lambda: sink.journal_depth == 0)
    assert endpoint.accepted() == ids(range(20))


def test_a_journal_that_cannot_store_keeps_events_in_memory_in_order_until_the_endpoint_returns(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    sink = webhook(endpoint.url, tmp_path)
    sink.publish([event(0)])
    sink._journal._db.execute("PRAGMA query_only = 1")  # noqa: SLF001 - real SQLITE_READONLY from here on
    sink.publish([event(n) for n in range(1, 6)])
    assert sink.journal_depth == 1 and sink.unspilled == 5
    endpoint.start()
    # Event 0 is delivered but cannot leave the journal; the replay fails (counted) until it can.
    wait_for(lambda: sink.replay_restarts > 0)
    assert "cannot delete delivered entries" in (sink.replay_problem or "")
    sink._journal._db.execute("PRAGMA query_only = 0")  # noqa: SLF001
    wait_for(lambda: sink.journal_depth == 0 and sink.unspilled == 0 and sink.replay_problem is None)
    sink.close()
    assert list(dict.fromkeys(endpoint.accepted())) == ids(range(6))


def test_a_url_that_is_not_http_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"sinks\[0\]\.url: Value error, expected an http:// or https:// URL"):
        parse_config({"sources": [{"url": "a.mp4"}], "sinks": [{"type": "webhook", "url": "ftp://example.com/x"}]})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("url", "http://127.0.0.1:1/a path", "contains a space, a control or a non-ASCII character: percent-encode it"),
    ("url", "http://127.0.0.1:1/caf\u00e9", "contains a space, a control or a non-ASCII character: percent-encode it"),
    ("url", "http://127.0.0.1:99999/", "the port is not a number from 0 to 65535"),
    ("token", "abc\r\nX-Injected: 1", "may hold only visible ASCII characters (no spaces or line breaks)"),
])
def test_what_http_cannot_carry_is_refused_in_the_config(key: str, value: str, message: str) -> None:
    sink = {"type": "webhook", "url": "http://127.0.0.1:1/", key: value}
    with pytest.raises(ConfigError) as caught:
        parse_config({"sources": [{"url": "a.mp4"}], "sinks": [sink]})
    assert f"sinks[0].{key}: {message}" in str(caught.value).replace("Value error, ", "")
    assert "X-Injected" not in str(caught.value)


def test_a_secret_that_is_not_a_string_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"sources": [{"url": "a.mp4"}],
                      "sinks": [{"type": "webhook", "url": "http://127.0.0.1:1/", "secret": 9876543210}]})
    assert "sinks[0].secret" in str(caught.value) and "9876543210" not in str(caught.value)


def test_an_empty_secret_is_refused_rather_than_signing_with_an_empty_key() -> None:
    with pytest.raises(ConfigError, match=r"sinks\[0\]\.secret: Value error, is empty"):
        parse_config({"sources": [{"url": "a.mp4"}],
                      "sinks": [{"type": "webhook", "url": "http://127.0.0.1:1/", "secret": ""}]})


def test_each_worker_gets_its_own_journal_and_keeps_the_secrets(tmp_path: Path) -> None:
    config = parse_config({
        "sources": [{"url": "rtsp://127.0.0.1:1/a"}, {"url": "rtsp://127.0.0.1:1/b"}],
        "sinks": [{"type": "webhook", "url": "http://127.0.0.1:1/", "secret": SECRET, "token": TOKEN,
                   "journal": {"path": str(tmp_path / "hook.sqlite3")}}],
        "pipeline": {"workers": 2},
    })
    from fiqa_stream.stream.sources import expand_sources

    specs, _ = expand_sources(config.sources)
    shards = shard_configs(config, specs, 2)
    sinks = [shard.sinks[0] for shard in shards]
    assert all(isinstance(s, WebhookSinkConfig) for s in sinks)
    assert [s.journal.path for s in sinks] == [tmp_path / "hook-worker0.sqlite3", tmp_path / "hook-worker1.sqlite3"]
    assert all(s.secret and s.secret.get_secret_value() == SECRET for s in sinks)
    assert all(s.token and s.token.get_secret_value() == TOKEN for s in sinks)


@pytest.mark.slow
def test_the_camera_to_webhook_config_posts_every_best_shot_signed_from_the_environment(
    face_clip: ClipTruth, tmp_path: Path, endpoint: Endpoint
) -> None:
    endpoint.start()
    out = tmp_path / "out"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "fiqa-stream"), "run", str(CONFIGS / "camera-to-webhook.yaml")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "FIQA_SOURCE": str(face_clip.path), "FIQA_SOURCE_ID": "lobby",
             "FIQA_WEBHOOK_URL": endpoint.url, "FIQA_WEBHOOK_SECRET": SECRET, "FIQA_OUT": str(out),
             "FIQA_JOURNAL": str(tmp_path / "journal.sqlite3")},
    )
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    on_disk = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(on_disk) == len(face_clip.faces)
    assert endpoint.accepted() == [e["event_id"] for e in on_disk]
    for request, written in zip(endpoint.requests, on_disk, strict=True):
        assert signed(request)
        body = json.loads(request.body)
        assert base64.b64decode(body.pop("crop")) == (out / written.pop("crop")).read_bytes()
        assert body == {**written, "crop_format": "jpeg"}
