"""MQTT sink against Debian's mosquitto: topics, fields, auth, TLS, outages, journal, discovery."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fiqa_stream.config import parse_config
from fiqa_stream.errors import ConfigError, SinkError
from fiqa_stream.media.clips import ClipTruth
from fiqa_stream.sinks import build_sink
from fiqa_stream.sinks.config import MqttSinkConfig
from fiqa_stream.sinks.events import event_fields
from fiqa_stream.sinks.mqtt import MqttSink
from fiqa_stream.stream.metrics import ReplayingSink
from fiqa_stream.types import BestShot, EventKind

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


def crop_jpeg(seed: int, size: int = 96) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def event(n: int, source: str = "cam", track: int | None = None) -> BestShot:
    return BestShot(
        event_id=f"{source}:r1:{n}:0", run_id="r1", kind=EventKind.FINAL, source=source,
        track_id=n if track is None else track, frame_index=10 * n, pts=n / 25,
        captured_at=datetime(2026, 3, 4, 5, 6, 7, 250000, tzinfo=UTC), first_seen=0.5, last_seen=n / 25 + 1,
        box=(1.5, 2.5, 30.0, 40.0), landmarks=((5.0, 6.0),) * 5, quality=0.75,
        components={"sharpness": 0.5, "pose": 1.0}, model="heuristic-1", crop_jpeg=crop_jpeg(n), sightings=12,
        decided_at=datetime.now(UTC),
    )


def sink_config(url: str, tmp_path: Path, **options: Any) -> MqttSinkConfig:
    settings: dict[str, Any] = {
        "journal": {"path": tmp_path / "journal.sqlite3"}, "connect_timeout": 2.0, "ack_timeout": 2.0,
        "reconnect_min_delay": 0.1, "reconnect_max_delay": 0.5, "keepalive": 5, **options,
    }
    return MqttSinkConfig(url=url, **settings)


def wait_for(condition: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {seconds:.0f} s")
        time.sleep(0.05)


class Subscriber:
    """A QoS 1 subscriber with a persistent session that reconnects by itself and keeps
    every message it receives, in the order received."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("fiqa/#",), client_id: str = "test-subscriber",
                 username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._topics = topics
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if username:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        self._client.on_connect = lambda client, *_: client.subscribe([(topic, 1) for topic in self._topics])
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload), m.retain))
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the subscriber did not get its SUBACK")

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for name, payload, _ in self.messages if name == topic]

    def events(self, suffix: str = "/best_shot") -> list[dict[str, Any]]:
        return [json.loads(payload) for name, payload, _ in self.messages if name.endswith(suffix)]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Subscriber]]:
    started: list[Subscriber] = []

    def start(port: int, *topics: str, **options: Any) -> Subscriber:
        subscriber = Subscriber(port, topics or ("fiqa/#",), **options)
        started.append(subscriber)
        return subscriber

    yield start
    for subscriber in started:
        subscriber.close()


def retained(port: int, topic: str, count: int = 1, **options: Any) -> list[tuple[str, bytes, bool]]:
    """What a newcomer subscribing to ``topic`` gets at once: the retained messages."""
    newcomer = Subscriber(port, (topic,), client_id=f"newcomer-{time.monotonic_ns()}", **options)
    try:
        wait_for(lambda: len(newcomer.messages) >= count, 10)
        time.sleep(0.2)  # nothing more is coming
        return list(newcomer.messages)
    finally:
        newcomer.close()


EVENT_FIELDS = {*event_fields(event(1)), "snapshot_topic", "crop_sha256"}


def test_an_event_arrives_as_json_with_the_documented_fields_after_its_crop_on_a_retained_topic(
    mosquitto: Any, tmp_path: Path, subscribers: Callable[..., Subscriber]
) -> None:
    subscriber = subscribers(mosquitto.port)
    original = event(3)
    with build_sink(sink_config(mosquitto.url, tmp_path)) as sink:
        sink.publish([original])
        wait_for(lambda: subscriber.events())
    [message] = subscriber.events()
    assert set(message) == EVENT_FIELDS
    assert message == {**json.loads(json.dumps(event_fields(original))), "snapshot_topic": "fiqa/cam/3/snapshot",
                       "crop_sha256": hashlib.sha256(original.crop_jpeg).hexdigest()}
    topics = [topic for topic, _, _ in subscriber.messages if topic != "fiqa/availability"]
    assert topics == ["fiqa/cam/3/snapshot", "fiqa/cam/best_shot"]  # the crop first, then its event
    assert subscriber.payloads("fiqa/cam/3/snapshot") == [original.crop_jpeg]
    [(topic, crop, retain)] = retained(mosquitto.port, "fiqa/cam/+/snapshot")
    assert (topic, crop, retain) == ("fiqa/cam/3/snapshot", original.crop_jpeg, True)


def test_topics_follow_their_templates_and_snapshots_can_be_switched_off(
    mosquitto: Any, tmp_path: Path, subscribers: Callable[..., Subscriber]
) -> None:
    subscriber = subscribers(mosquitto.port, "site/#")
    config = sink_config(mosquitto.url, tmp_path, topic="site/{source}/faces",
                         snapshot_topic="site/{source}/crops/{track_id}", availability_topic="site/fiqa")
    with build_sink(config) as sink:
        sink.publish([event(1, "door"), event(2, "gate")])
        wait_for(lambda: len(subscriber.events("/faces")) == 2)
    # The broker relays the sink's last word (offline, sent as it closes) on its own time.
    wait_for(lambda: len(subscriber.messages) >= 6)
    assert [topic for topic, _, _ in subscriber.messages] == [
        "site/fiqa", "site/door/crops/1", "site/door/faces", "site/gate/crops/2", "site/gate/faces", "site/fiqa"]
    plain = subscribers(mosquitto.port, "plain/#", client_id="plain")
    with build_sink(sink_config(mosquitto.url, tmp_path, topic="plain/{source}", snapshot_topic=None)) as sink:
        sink.publish([event(1)])
        wait_for(lambda: plain.messages)
    [(topic, payload, _)] = plain.messages
    assert topic == "plain/cam" and json.loads(payload)["snapshot_topic"] is None


def test_availability_is_online_while_connected_and_offline_after_close(
    mosquitto: Any, tmp_path: Path
) -> None:
    with build_sink(sink_config(mosquitto.url, tmp_path)):
        assert retained(mosquitto.port, "fiqa/availability") == [("fiqa/availability", b"online", True)]
    assert retained(mosquitto.port, "fiqa/availability") == [("fiqa/availability", b"offline", True)]


def test_the_last_will_says_offline_when_fiqa_stream_is_killed(mosquitto: Any, tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", f"""
import time
from pathlib import Path
from fiqa_stream.sinks import build_sink
from fiqa_stream.sinks.config import MqttSinkConfig
sink = build_sink(MqttSinkConfig(url={mosquitto.url!r}, journal={{"path": Path({str(tmp_path)!r}) / "j.sqlite3"}}))
print("connected" if sink.connected else "not connected", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "connected"
    assert retained(mosquitto.port, "fiqa/availability") == [("fiqa/availability", b"online", True)]
    writer.kill()  # kill -9: no close, no 'offline' of its own
    writer.wait(10)
    writer.stdout.close()
    wait_for(lambda: retained(mosquitto.port, "fiqa/availability") == [("fiqa/availability", b"offline", True)], 10)


def produce_through_an_outage(sink: Any, outage: Callable[[], None], count: int = 300) -> tuple[list[str], int]:
    """Publishes ``count`` events, one every 15 ms, while ``outage`` runs after 1 s; returns
    the event ids in production order and how many were produced during the outage."""
    produced: list[str] = []
    done = threading.Event()

    def produce() -> None:
        for n in range(count):
            sink.publish([event(n)])
            produced.append(f"cam:r1:{n}:0")
            time.sleep(0.015)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(1.0)
    before = len(produced)
    outage()
    during = len(produced) - before
    producer.join(120)
    assert done.is_set()
    return produced, during


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_broker_stopped_or_killed_mid_run_and_restarted_loses_nothing_and_keeps_order(
    how: str, mosquitto: Any, tmp_path: Path, subscribers: Callable[..., Subscriber]
) -> None:
    subscriber = subscribers(mosquitto.port, "fiqa/cam/best_shot")
    mosquitto.save()  # a kill -9 loses what was not saved: the subscriber's session must be on disk
    sink = build_sink(sink_config(mosquitto.url, tmp_path))
    assert isinstance(sink, MqttSink)
    depths: list[int] = []

    def outage() -> None:
        mosquitto.stop() if how == "stopped" else mosquitto.kill()
        time.sleep(2.0)
        depths.append(sink.journal_depth)
        mosquitto.start()

    produced, during_outage = produce_through_an_outage(sink, outage)
    wait_for(lambda: sink.journal_depth == 0 and sink.connected)
    sink.close()
    assert during_outage > 50 and depths[0] > 50  # the journal took what the broker could not
    wait_for(lambda: produced[-1] in {e["event_id"] for e in subscriber.events()})
    received = [e["event_id"] for e in subscriber.events()]
    assert list(dict.fromkeys(received)) == produced  # what a consumer de-duplicating by event_id sees


def test_a_broker_down_at_start_gets_the_events_once_it_is_up(
    mosquitto: Any, tmp_path: Path, subscribers: Callable[..., Subscriber], caplog: pytest.LogCaptureFixture
) -> None:
    subscriber = subscribers(mosquitto.port, "fiqa/cam/best_shot")
    mosquitto.stop()  # the subscriber's session is saved with the broker's data
    with caplog.at_level(logging.WARNING):
        sink = build_sink(sink_config(mosquitto.url, tmp_path))
    assert "not reachable at start" in caplog.text
    assert isinstance(sink, MqttSink)
    sink.publish([event(n) for n in range(20)])
    assert sink.journal_depth == 20 and not sink.connected
    mosquitto.start()
    wait_for(lambda: sink.journal_depth == 0)
    sink.close()
    wait_for(lambda: len(subscriber.events()) >= 20)
    assert [e["event_id"] for e in subscriber.events()] == [f"cam:r1:{n}:0" for n in range(20)]


def test_the_journal_survives_a_kill_9_of_fiqa_stream_and_is_replayed_on_the_next_start(
    mosquitto: Any, tmp_path: Path, subscribers: Callable[..., Subscriber],
    publish_then_kill_9: Callable[[str, int], None],
) -> None:
    subscriber = subscribers(mosquitto.port, "fiqa/cam/best_shot")
    mosquitto.stop()  # fiqa-stream runs while the broker is away, so events go to the journal
    publish_then_kill_9(
        "from test_mqtt import event, sink_config\nfrom fiqa_stream.sinks import build_sink\n"
        f"sink = build_sink(sink_config({mosquitto.url!r}, Path({str(tmp_path)!r})))", 40,
    )
    mosquitto.start()
    with build_sink(sink_config(mosquitto.url, tmp_path)) as sink:
        wait_for(lambda: sink.journal_depth == 0)
    wait_for(lambda: len(subscriber.events()) >= 40)
    assert [e["event_id"] for e in subscriber.events()] == [f"cam:r1:{n}:0" for n in range(40)]


def test_a_user_with_a_password_from_the_environment_delivers_and_a_refusal_is_one_line_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    mosquitto_brokers: Callable[..., Any], subscribers: Callable[..., Subscriber],
) -> None:
    broker = mosquitto_brokers(users={"camera": "s3cr3t!", "reader": "r3ad"})
    subscriber = subscribers(broker.port, username="reader", password="r3ad")
    monkeypatch.setenv("MQTT_PASSWORD", "s3cr3t!")
    config = parse_config({
        "sources": [{"url": "a.mp4"}],
        "sinks": [{"type": "mqtt", "url": broker.url, "username": "camera", "password": "${MQTT_PASSWORD}",
                   "journal": {"path": str(tmp_path / "j.sqlite3")}}],
    })
    with caplog.at_level(logging.DEBUG), build_sink(config.sinks[0]) as sink:
        sink.publish([event(1)])
        wait_for(lambda: subscriber.events())
    assert subscriber.events()[0]["event_id"] == "cam:r1:1:0"
    wrong = sink_config(broker.url, tmp_path, username="camera", password="nope")
    with caplog.at_level(logging.DEBUG), pytest.raises(SinkError) as caught:
        build_sink(wrong)
    assert str(caught.value) == (
        f"mqtt sink {broker.url}: the broker refused the connection: Not authorized")
    with pytest.raises(SinkError, match="the broker refused the connection: Not authorized"):
        build_sink(sink_config(broker.url, tmp_path))  # anonymous
    assert "s3cr3t!" not in caplog.text and "nope" not in caplog.text


def test_a_password_in_the_url_is_used_and_masked_in_errors(
    tmp_path: Path, mosquitto_brokers: Callable[..., Any], subscribers: Callable[..., Subscriber]
) -> None:
    broker = mosquitto_brokers(users={"camera": "s3cr3t!", "reader": "r3ad"})
    subscriber = subscribers(broker.port, username="reader", password="r3ad")
    with build_sink(sink_config(f"mqtt://camera:s3cr3t%21@127.0.0.1:{broker.port}", tmp_path)) as sink:
        sink.publish([event(1)])
        wait_for(lambda: subscriber.events())
    with pytest.raises(SinkError) as caught:
        build_sink(sink_config(f"mqtt://camera:nope@127.0.0.1:{broker.port}", tmp_path))
    assert str(caught.value) == (
        f"mqtt sink mqtt://camera:***@127.0.0.1:{broker.port}: the broker refused the connection: Not authorized")


def test_publications_the_acl_refuses_stay_in_the_journal_and_go_once_it_allows_them(
    tmp_path: Path, mosquitto_brokers: Callable[..., Any], subscribers: Callable[..., Subscriber]
) -> None:
    broker = mosquitto_brokers(users={"camera": "c", "reader": "r"},
                               acl="user camera\ntopic write elsewhere/#\n\nuser reader\ntopic read #\n")
    subscriber = subscribers(broker.port, "fiqa/cam/best_shot", username="reader", password="r")
    sink = build_sink(sink_config(broker.url, tmp_path, username="camera", password="c"))
    assert isinstance(sink, MqttSink)
    try:
        sink.publish([event(n) for n in range(5)])  # MQTT 3.1.1 would have called these delivered
        wait_for(lambda: sink.replay_restarts >= 1)
        assert sink.delivered == 0 and sink.journal_depth == 5
        assert "the broker refused a publication: Not authorized" in (sink.replay_problem or "")
        broker.acl.write_text("user camera\ntopic write fiqa/#\n\nuser reader\ntopic read #\n")
        broker.reload()
        wait_for(lambda: sink.journal_depth == 0 and sink.replay_healthy)
    finally:
        sink.close()
    wait_for(lambda: len(subscriber.events()) >= 5)
    assert [e["event_id"] for e in subscriber.events()] == [f"cam:r1:{n}:0" for n in range(5)]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it, made by openssl(1)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (scripts/test.sh installs it)")
    folder = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=fiqa test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nauthorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return {name: folder / f"{name}" for name in ("ca.pem", "server.pem", "server.key")}


def test_tls_with_the_brokers_ca_delivers_and_an_untrusted_certificate_is_one_clear_error(
    tmp_path: Path, certificates: dict[str, Path], mosquitto_brokers: Callable[..., Any]
) -> None:
    broker = mosquitto_brokers(tls=(certificates["server.pem"], certificates["server.key"]))
    url = f"mqtts://127.0.0.1:{broker.port}"
    with build_sink(sink_config(url, tmp_path, tls={"ca_file": certificates["ca.pem"]})) as sink:
        assert isinstance(sink, MqttSink)
        sink.publish([event(1)])
        assert sink.delivered == 1 and sink.journal_depth == 0
    with pytest.raises(SinkError, match=rf"^mqtt sink {url}: TLS failed: .*certificate"):
        build_sink(sink_config(url, tmp_path))  # the system's CAs do not know this one


def test_home_assistant_discovery_publishes_a_retained_sensor_and_image_per_source(
    mosquitto: Any, tmp_path: Path
) -> None:
    config = sink_config(mosquitto.url, tmp_path, home_assistant={"discovery": True})
    with build_sink(config) as sink:
        sink.publish([event(1, "door"), event(2, "gate.2"), replace(event(3, "door"), crop_jpeg=crop_jpeg(33))])
        configs = retained(mosquitto.port, "homeassistant/#", count=4)
        latest = retained(mosquitto.port, "fiqa/door/snapshot")
    assert sorted(topic for topic, _, _ in configs) == [
        "homeassistant/image/fiqa_stream/door_best_shot/config",
        "homeassistant/image/fiqa_stream/gate_2_best_shot/config",
        "homeassistant/sensor/fiqa_stream/door_quality/config",
        "homeassistant/sensor/fiqa_stream/gate_2_quality/config",
    ]
    assert all(retain for _, _, retain in configs)
    by_topic = {topic: json.loads(payload) for topic, payload, _ in configs}
    device = {"identifiers": ["fiqa_stream_door"], "name": "fiqa-stream door", "manufacturer": "fiqa-stream",
              "model": "best-shot face quality"}
    availability = {"availability_topic": "fiqa/availability", "payload_available": "online",
                    "payload_not_available": "offline"}
    assert by_topic["homeassistant/sensor/fiqa_stream/door_quality/config"] == {
        "name": "Best-shot quality", "unique_id": "fiqa_stream_door_quality", "state_topic": "fiqa/door/best_shot",
        "value_template": "{{ value_json.quality }}", "json_attributes_topic": "fiqa/door/best_shot",
        "state_class": "measurement", "icon": "mdi:face-recognition", **availability, "device": device,
    }
    assert by_topic["homeassistant/image/fiqa_stream/door_best_shot/config"] == {
        "name": "Best shot", "unique_id": "fiqa_stream_door_best_shot", "image_topic": "fiqa/door/snapshot",
        "content_type": "image/jpeg", **availability, "device": device,
    }
    assert latest == [("fiqa/door/snapshot", crop_jpeg(33), True)]  # the image entity shows the newest crop


def test_discovery_is_published_again_after_a_broker_restart_without_its_data(
    mosquitto: Any, tmp_path: Path
) -> None:
    config = sink_config(mosquitto.url, tmp_path, home_assistant={"discovery": True})
    with build_sink(config) as sink:
        assert isinstance(sink, MqttSink)
        sink.publish([event(1, "door")])
        mosquitto.kill()
        for leftover in mosquitto.workdir.glob("*.db"):
            leftover.unlink()  # a broker that lost its retained messages
        mosquitto.start()
        wait_for(lambda: sink.connected)
        configs = retained(mosquitto.port, "homeassistant/#", count=2)
    assert len(configs) == 2


def test_an_event_over_the_size_limit_is_refused_clearly_and_the_others_go(
    mosquitto: Any, tmp_path: Path, subscribers: Callable[..., Subscriber]
) -> None:
    subscriber = subscribers(mosquitto.port, "fiqa/cam/best_shot")
    big = replace(event(2), crop_jpeg=b"x" * 50_000)
    with build_sink(sink_config(mosquitto.url, tmp_path, max_payload_bytes=20_000)) as sink, \
            pytest.raises(SinkError, match=r"1 event\(s\) larger than max_payload_bytes \(20000\)"):
        sink.publish([event(1), big, event(3)])
    wait_for(lambda: len(subscriber.events()) == 2)
    assert [e["event_id"] for e in subscriber.events()] == ["cam:r1:1:0", "cam:r1:3:0"]


def test_the_sink_reports_its_journal_to_metrics_and_healthz(mosquitto: Any, tmp_path: Path) -> None:
    with build_sink(sink_config(mosquitto.url, tmp_path)) as sink:
        assert isinstance(sink, ReplayingSink)
        assert (sink.journal_depth, sink.unspilled, sink.replay_restarts, sink.replay_problem) == (0, 0, 0, None)


BAD_CONFIGS = {
    "a URL that is not MQTT": ({"url": "http://localhost:1883"},
                               r"sinks\[0\]\.url: Value error, expected mqtt://host\[:port\] or mqtts://"),
    "a URL with a path": ({"url": "mqtt://localhost:1883/x"}, r"sinks\[0\]\.url: Value error, expected mqtt://"),
    "a wildcard in the topic": ({"url": "mqtt://h", "topic": "fiqa/+/best_shot"},
                                r"sinks\[0\]\.topic: Value error, a topic to publish on must be non-empty, "
                                r"without '\+', '#'"),
    "an unknown field in the topic": ({"url": "mqtt://h", "topic": "fiqa/{camera}"},
                                      r"sinks\[0\]\.topic: Value error, only '\{source\}' may be used in braces"),
    "braces in the availability topic": ({"url": "mqtt://h", "availability_topic": "fiqa/{source}"},
                                         r"sinks\[0\]\.availability_topic: Value error, braces are not allowed"),
    "tls settings on a plain URL": ({"url": "mqtt://h", "tls": {"ca_file": "ca.pem"}},
                                    r"sinks\[0\]: Value error, tls settings need an mqtts:// URL"),
    "discovery with one topic for all sources": (
        {"url": "mqtt://h", "topic": "fiqa/best_shot", "home_assistant": {"discovery": True}},
        r"sinks\[0\]: Value error, home_assistant.discovery needs '\{source\}' in topic"),
    "a password with a raw slash": ({"url": "mqtt://u:a/b@h"}, r"sinks\[0\]\.url: .*percent-encode"),
}


@pytest.mark.parametrize(("sink", "error"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_a_bad_setting_is_a_config_error_naming_the_key(sink: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error) as caught:
        parse_config({"sources": [{"url": "a.mp4"}], "sinks": [{"type": "mqtt", **sink}]})
    assert "a/b" not in str(caught.value)


@pytest.mark.slow
def test_the_camera_to_mqtt_config_feeds_the_broker_and_a_folder_from_the_environment(
    face_clip: ClipTruth, tmp_path: Path, mosquitto: Any, subscribers: Callable[..., Subscriber]
) -> None:
    subscriber = subscribers(mosquitto.port, "fiqa/#", "homeassistant/#")
    out = tmp_path / "out"
    result = subprocess.run([FIQA_STREAM, "run", str(CONFIGS / "camera-to-mqtt.yaml")], capture_output=True,
                            text=True, timeout=300, env={
        **os.environ, "FIQA_SOURCE": str(face_clip.path), "FIQA_SOURCE_ID": "lobby",
        "FIQA_MQTT_URL": mosquitto.url, "FIQA_OUT": str(out), "FIQA_JOURNAL": str(tmp_path / "journal.sqlite3"),
    })
    assert result.returncode == 0, result.stderr
    on_disk = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(on_disk) == len(face_clip.faces) and all(e["event_id"].startswith("lobby:") for e in on_disk)
    wait_for(lambda: len(subscriber.events()) == len(on_disk))
    in_mqtt = subscriber.events()
    assert [e["event_id"] for e in in_mqtt] == [e["event_id"] for e in on_disk]
    for sent, written in zip(in_mqtt, on_disk, strict=True):
        crop = (out / written["crop"]).read_bytes()
        assert sent["crop_sha256"] == hashlib.sha256(crop).hexdigest()
        assert subscriber.payloads(sent["snapshot_topic"]) == [crop]
    assert {t for t, _, _ in subscriber.messages if t.startswith("homeassistant/")} == {
        "homeassistant/sensor/fiqa_stream/lobby_quality/config",
        "homeassistant/image/fiqa_stream/lobby_best_shot/config",
    }
    assert subscriber.payloads("fiqa/availability")[-1] == b"offline"
