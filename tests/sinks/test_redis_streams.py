"""Redis Streams sink against a real redis-server: fields, auth, outages, journal, consumer."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis

from fiqa_stream.config import parse_config
from fiqa_stream.errors import ConfigError, SinkError
from fiqa_stream.readers.redis_consumer import BestShotConsumer, ConsumerSettings
from fiqa_stream.sinks import build_sink
from fiqa_stream.sinks.config import DirectorySinkConfig, RedisSinkConfig
from fiqa_stream.sinks.redis_streams import RedisSink, decode_entry, entry_fields
from fiqa_stream.stream.metrics import MetricsServer, PipelineMetrics
from fiqa_stream.types import BestShot, EventKind

ENTRY_FIELDS = {
    "event_id", "run_id", "schema", "kind", "source", "track_id", "frame_index", "pts", "captured_at", "captured_at_ms",
    "first_seen", "last_seen", "box",
    "first_frame_index", "first_box", "landmarks", "quality", "components", "model", "sightings",
    "decided_at", "decided_at_ms", "crop_format", "crop", "frame_key",
}


def crop_jpeg(seed: int, size: int = 96) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def event(n: int, source: str = "cam", frame: bytes | None = None) -> BestShot:
    return BestShot(
        event_id=f"{source}:{n}:0", run_id="r1", kind=EventKind.FINAL, source=source, track_id=n, frame_index=10 * n,
        pts=n / 25, captured_at=datetime(2026, 3, 4, 5, 6, 7, 250000, tzinfo=UTC), first_seen=0.5,
        last_seen=n / 25 + 1, box=(1.5, 2.5, 30.0, 40.0), landmarks=((5.0, 6.0),) * 5, quality=0.75,
        components={"sharpness": 0.5, "pose": 1.0}, model="heuristic-1", crop_jpeg=crop_jpeg(n), sightings=12,
        decided_at=datetime.now(UTC), frame_jpeg=frame,
    )


def sink_config(url: str, tmp_path: Path, **options: Any) -> RedisSinkConfig:
    return RedisSinkConfig(url=url, journal={"path": tmp_path / "journal.sqlite3"},
                           connect_timeout=0.5, socket_timeout=0.5, **options)


def stream_events(url: str, key: str = "fiqa:bestshots") -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    try:
        return [decode_entry(fields)[0] for _, fields in client.xrange(key)]
    finally:
        client.close()


def wait_for(condition: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {seconds:.0f} s")
        time.sleep(0.05)


def journal_pragma(sink: Any, pragma: str) -> None:
    """Sets a per-connection SQLite pragma on the sink's journal (the only way to reach it)."""
    sink._journal._db.execute(f"PRAGMA {pragma}")  # noqa: SLF001


def test_an_event_arrives_with_exactly_the_documented_fields_and_its_crop(redis_server: Any, tmp_path: Path) -> None:
    original = event(3)
    with build_sink(sink_config(redis_server.url, tmp_path)) as sink:
        sink.publish([original])
    client = redis.Redis.from_url(redis_server.url)
    [(_, fields)] = client.xrange("fiqa:bestshots")
    assert {k.decode() for k in fields} == ENTRY_FIELDS
    decoded, crop = decode_entry(fields)
    assert crop == original.crop_jpeg
    assert decoded["event_id"] == "cam:3:0" and decoded["kind"] == "final" and decoded["schema"] == 2
    assert decoded["box"] == [1.5, 2.5, 30.0, 40.0] and decoded["landmarks"] == [[5.0, 6.0]] * 5
    assert decoded["components"] == {"sharpness": 0.5, "pose": 1.0}
    assert decoded["captured_at"] == "2026-03-04T05:06:07.250000+00:00"
    assert decoded["captured_at_ms"] == int(datetime(2026, 3, 4, 5, 6, 7, 250000, tzinfo=UTC).timestamp() * 1000)
    assert decoded["quality"] == 0.75 and decoded["frame_index"] == 30 and decoded["frame_key"] is None


def test_a_key_template_gives_one_stream_per_source(redis_server: Any, tmp_path: Path) -> None:
    with build_sink(sink_config(redis_server.url, tmp_path, stream="fiqa:{source}")) as sink:
        sink.publish([event(1, "door"), event(2, "gate"), event(3, "door")])
    assert [e["event_id"] for e in stream_events(redis_server.url, "fiqa:door")] == ["door:1:0", "door:3:0"]
    assert [e["event_id"] for e in stream_events(redis_server.url, "fiqa:gate")] == ["gate:2:0"]


def test_full_frames_are_stored_under_their_own_key_with_a_ttl(redis_server: Any, tmp_path: Path) -> None:
    frame = crop_jpeg(99, size=320)
    with build_sink(sink_config(redis_server.url, tmp_path, full_frames=True, frame_ttl=60)) as sink:
        sink.publish([event(1, frame=frame)])
    [entry] = stream_events(redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    assert entry["frame_key"] == "fiqa:frame:cam:1:0"
    assert client.get("fiqa:frame:cam:1:0") == frame
    assert 0 < client.ttl("fiqa:frame:cam:1:0") <= 60


def test_retention_trims_the_stream_approximately(redis_server: Any, tmp_path: Path) -> None:
    with build_sink(sink_config(redis_server.url, tmp_path, maxlen=100)) as sink:
        for start in range(0, 1000, 50):
            sink.publish([event(n) for n in range(start, start + 50)])
    length = redis.Redis.from_url(redis_server.url).xlen("fiqa:bestshots")
    assert 100 <= length < 1000


def test_an_entry_over_the_size_limit_is_refused_clearly_and_the_others_go(redis_server: Any, tmp_path: Path) -> None:
    big = replace(event(2), crop_jpeg=b"x" * 50_000)
    with build_sink(sink_config(redis_server.url, tmp_path, max_entry_bytes=20_000)) as sink, \
            pytest.raises(SinkError, match=r"1 event\(s\) larger than max_entry_bytes \(20000\)"):
        sink.publish([event(1), big, event(3)])
    assert [e["event_id"] for e in stream_events(redis_server.url)] == ["cam:1:0", "cam:3:0"]


def test_a_key_of_the_wrong_type_is_a_clear_error(redis_server: Any, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_server.url).set("fiqa:bestshots", "a string")
    with pytest.raises(SinkError, match="key 'fiqa:bestshots' holds a string, not a stream"):
        build_sink(sink_config(redis_server.url, tmp_path))


def test_a_bad_url_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"sinks\[0\]\.url: Value error, expected a redis://, rediss:// or unix://"):
        parse_config({"sources": [{"url": "a.mp4"}], "sinks": [{"type": "redis", "url": "http://localhost:6379"}]})


def test_an_acl_user_with_a_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: Any
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    admin.execute_command("ACL", "SETUSER", "camera", "on", ">s3cr3t!", "~fiqa:*", "+@all")
    admin.execute_command("ACL", "SETUSER", "default", "off")
    monkeypatch.setenv("REDIS_PASSWORD", "s3cr3t!")
    config = parse_config({
        "sources": [{"url": "a.mp4"}],
        "sinks": [{"type": "redis", "url": redis_server.url, "username": "camera", "password": "${REDIS_PASSWORD}",
                   "journal": {"path": str(tmp_path / "j.sqlite3")}}],
    })
    with build_sink(config.sinks[0]) as sink:
        sink.publish([event(1)])
    camera = redis.Redis.from_url(redis_server.url, username="camera", password="s3cr3t!")
    assert camera.xlen("fiqa:bestshots") == 1
    wrong = RedisSinkConfig(url=f"redis://camera:nope@127.0.0.1:{redis_server.port}/0",
                            journal={"path": tmp_path / "j2.sqlite3"})
    with pytest.raises(SinkError) as caught:
        build_sink(wrong)
    assert "authentication failed" in str(caught.value) or "not allowed" in str(caught.value)
    assert "nope" not in str(caught.value) and "camera:***@" in str(caught.value)


def test_an_outage_loses_nothing_and_keeps_order(redis_server: Any, tmp_path: Path) -> None:
    produced: list[str] = []
    sink = build_sink(sink_config(redis_server.url, tmp_path))
    done = threading.Event()

    def produce() -> None:
        for n in range(300):
            batch = [event(n)]
            sink.publish(batch)
            produced.extend(e.event_id for e in batch)
            time.sleep(0.015)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(1.0)
    redis_server.kill()
    time.sleep(3.0)
    during_outage = len(produced)
    redis_server.start()
    producer.join(60)
    assert done.is_set()
    sink.close()
    assert during_outage > 50
    delivered = [e["event_id"] for e in stream_events(redis_server.url)]
    unique = list(dict.fromkeys(delivered))  # what a consumer de-duplicating by event_id sees
    assert unique == produced


def test_the_journal_survives_a_kill_9_of_fiqa_stream_and_is_replayed_on_the_next_start(
    redis_server: Any, tmp_path: Path, publish_then_kill_9: Callable[[str, int], None]
) -> None:
    journal = tmp_path / "journal.sqlite3"
    redis_server.kill()  # fiqa-stream runs while Redis is away, so events go to the journal
    publish_then_kill_9(
        "from test_redis_streams import event, sink_config\nfrom fiqa_stream.sinks import build_sink\n"
        f"sink = build_sink(sink_config({redis_server.url!r}, Path({str(tmp_path)!r})))", 40,
    )
    assert journal.exists()
    redis_server.start()
    with build_sink(sink_config(redis_server.url, tmp_path)) as sink:
        deadline = time.monotonic() + 20
        while sink.journal_depth and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [e["event_id"] for e in stream_events(redis_server.url)] == [f"cam:{n}:0" for n in range(40)]


def test_enospc_injected_into_the_journal_while_redis_is_away_loses_no_event(
    redis_server: Any, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = os.statvfs(tiny_disk)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 150_000))
    redis_server.kill()
    sink = build_sink(sink_config(redis_server.url, tiny_disk))
    assert isinstance(sink, RedisSink)
    for n in range(40):
        sink.publish([event(n)])  # the disk fills up on the way: never an error, never a drop
    assert sink.unspilled > 0 and sink.journal_depth + sink.unspilled == 40
    wait_for(lambda: sink.replay_restarts > 0 and not sink.replay_healthy)
    assert "cannot write: database or disk is full" in (sink.replay_problem or "")
    filler.unlink()  # space freed ...
    redis_server.start()  # ... and Redis returns
    wait_for(lambda: sink.journal_depth == 0 and sink.unspilled == 0)
    wait_for(lambda: sink.replay_healthy)
    with caplog.at_level(logging.WARNING):
        sink.close()
    assert "stay in journal" not in caplog.text
    assert list(dict.fromkeys(e["event_id"] for e in stream_events(redis_server.url))) == [
        f"cam:{n}:0" for n in range(40)
    ]


def test_a_full_journal_database_keeps_events_in_memory_until_it_takes_them_again(
    redis_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.kill()
    sink = build_sink(sink_config(redis_server.url, tmp_path))
    assert isinstance(sink, RedisSink)
    sink.publish([event(0)])
    journal_pragma(sink, "max_page_count = 40")  # real SQLITE_FULL from here on
    for n in range(1, 40):
        sink.publish([event(n)])
    assert sink.unspilled > 0 and sink.journal_depth + sink.unspilled == 40
    wait_for(lambda: sink.replay_restarts > 0)
    journal_pragma(sink, "max_page_count = 1000000")  # room again: the replay thread spills what waits
    wait_for(lambda: sink.unspilled == 0 and sink.replay_healthy)
    with caplog.at_level(logging.WARNING):
        sink.close(drain_seconds=0)
    assert "40 events stay in journal" in caplog.text  # counted in the database
    redis_server.start()
    with build_sink(sink_config(redis_server.url, tmp_path)) as again:
        wait_for(lambda: again.journal_depth == 0)
    assert [e["event_id"] for e in stream_events(redis_server.url)] == [f"cam:{n}:0" for n in range(40)]


def test_the_replay_thread_restarts_while_redis_refuses_writes_and_metrics_and_healthz_show_it(
    redis_server: Any, tmp_path: Path
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    sink = build_sink(sink_config(redis_server.url, tmp_path))
    assert isinstance(sink, RedisSink)
    metrics = PipelineMetrics()
    metrics.watch_sinks([sink])
    server = MetricsServer(metrics, "127.0.0.1", 0, down_after=10.0)
    try:
        admin.execute_command("ACL", "SETUSER", "default", "-xadd")  # Redis answers NOPERM
        sink.publish([event(n) for n in range(10)])
        wait_for(lambda: sink.replay_restarts >= 2)
        with pytest.raises(urllib.error.HTTPError) as unhealthy:
            urllib.request.urlopen(f"http://{server.address}/healthz", timeout=5)
        assert unhealthy.value.code == 503
        body = json.loads(unhealthy.value.read())
        assert body["status"] == "unhealthy" and "no permissions" in body["sinks"]["redis"]["replay"]
        assert body["sinks"]["redis"]["journal_depth"] == 10
        unhealthy.value.close()
        scrape = urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5).read().decode()
        assert 'fiqa_sink_replay_healthy{sink="redis"} 0.0' in scrape
        assert f'fiqa_sink_replay_restarts_total{{sink="redis"}} {float(sink.replay_restarts)}' in scrape
        admin.execute_command("ACL", "SETUSER", "default", "+xadd")
        wait_for(lambda: sink.journal_depth == 0 and sink.replay_healthy)
        sink.publish([event(10)])
        with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=5) as healthy:
            assert healthy.status == 200 and json.loads(healthy.read())["sinks"]["redis"]["replay"] == "ok"
    finally:
        server.close()
        sink.close()
    assert [e["event_id"] for e in stream_events(redis_server.url)] == [f"cam:{n}:0" for n in range(11)]


def test_entries_the_journal_cannot_delete_are_not_sent_again_and_go_once_it_can(
    redis_server: Any, tmp_path: Path
) -> None:
    redis_server.kill()
    sink = build_sink(sink_config(redis_server.url, tmp_path))
    assert isinstance(sink, RedisSink)
    sink.publish([event(n) for n in range(5)])
    journal_pragma(sink, "query_only = 1")  # real SQLITE_READONLY for every write
    redis_server.start()
    wait_for(lambda: sink.replay_restarts >= 2)
    sink.publish([event(n) for n in range(5, 8)])  # the journal cannot take these either
    assert "cannot delete delivered entries" in (sink.replay_problem or "")
    assert [e["event_id"] for e in stream_events(redis_server.url)] == [f"cam:{n}:0" for n in range(5)]
    journal_pragma(sink, "query_only = 0")
    wait_for(lambda: sink.journal_depth == 0 and sink.unspilled == 0 and sink.replay_healthy)
    sink.close()
    assert [e["event_id"] for e in stream_events(redis_server.url)] == [f"cam:{n}:0" for n in range(8)]


def test_the_consumer_writes_best_shots_and_drops_repeats(redis_server: Any, tmp_path: Path) -> None:
    with build_sink(sink_config(redis_server.url, tmp_path)) as sink:
        sink.publish([event(1), event(2), event(1)])  # event 1 twice, as after a crash
    out = tmp_path / "received"
    consumer = BestShotConsumer(ConsumerSettings(redis_server.url, "fiqa:bestshots", "g", "c1", out, block_ms=200))
    assert consumer.run(threading.Event(), idle_exit=0.4) == 3
    lines = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["event_id"] for e in lines] == ["cam:1:0", "cam:2:0"]
    assert consumer.duplicates == 1
    assert (out / lines[0]["crop"]).read_bytes() == event(1).crop_jpeg
    assert redis.Redis.from_url(redis_server.url).xpending("fiqa:bestshots", "g")["pending"] == 0


def test_the_consumer_claims_what_a_dead_consumer_left_pending(redis_server: Any, tmp_path: Path) -> None:
    with build_sink(sink_config(redis_server.url, tmp_path)) as sink:
        sink.publish([event(n) for n in range(5)])
    client = redis.Redis.from_url(redis_server.url)
    client.xgroup_create("fiqa:bestshots", "g", id="0")
    taken = client.xreadgroup("g", "dead", {"fiqa:bestshots": ">"}, count=3)  # read, never acknowledged
    assert len(taken[0][1]) == 3
    time.sleep(0.3)
    out = tmp_path / "received"
    consumer = BestShotConsumer(ConsumerSettings(redis_server.url, "fiqa:bestshots", "g", "alive", out,
                                                 claim_idle_ms=200, block_ms=200))
    assert consumer.run(threading.Event(), idle_exit=0.4) == 5
    assert sorted(json.loads(line)["event_id"] for line in (out / "events.jsonl").read_text().splitlines()) == [
        f"cam:{n}:0" for n in range(5)
    ]
    assert client.xpending("fiqa:bestshots", "g")["pending"] == 0


POISONS = {
    "box that is not JSON": {"box": "[1.5, 2.5,"},
    "landmarks that are not JSON": {"landmarks": "{{"},
    "components that are not JSON": {"components": "sharpness=0.5"},
    "a track id that is not a number": {"track_id": "seven"},
    "no event id": {"event_id": ""},
    "no run id": {"run_id": ""},
    "a crop that is not a JPEG": {"crop": b"GIF89a..."},
    "a source that is not a file name": {"source": "../../etc"},
    "a run id that is not a file name": {"run_id": "r1/../.."},
}


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
def test_a_poison_entry_is_moved_to_the_dead_letter_stream_and_the_valid_one_behind_it_is_delivered(
    redis_server: Any, tmp_path: Path, poison: dict[str, bytes | str]
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    fields = {**entry_fields(event(1), None), **poison}
    poison_id = client.xadd("fiqa:bestshots", fields)
    client.xadd("fiqa:bestshots", entry_fields(event(2), None))
    out = tmp_path / "received"
    settings = ConsumerSettings(redis_server.url, "fiqa:bestshots", "g", "c1", out, block_ms=200)
    consumer = BestShotConsumer(settings)
    assert consumer.run(threading.Event(), idle_exit=0.4) == 2
    consumer.close()
    assert consumer.dead_lettered == 1 and consumer.written == 1
    assert [json.loads(line)["event_id"] for line in (out / "events.jsonl").read_text().splitlines()] == ["cam:2:0"]
    [(_, dead)] = client.xrange("fiqa:bestshots:dead")
    assert dead[b"dead_entry_id"] == poison_id and dead[b"dead_stream"] == b"fiqa:bestshots"
    assert dead[b"dead_error"].startswith(b"field '")
    assert {k: v for k, v in dead.items() if not k.startswith(b"dead_")} == client.xrange("fiqa:bestshots")[0][1]
    assert client.xpending("fiqa:bestshots", "g")["pending"] == 0
    again = BestShotConsumer(settings)  # a restart neither dies nor sees the poison entry again
    assert again.run(threading.Event(), idle_exit=0.4) == 0
    again.close()
    assert client.xlen("fiqa:bestshots:dead") == 1


def test_the_consumer_lays_out_crops_as_the_directory_sink_does(redis_server: Any, tmp_path: Path) -> None:
    events = [replace(event(n), event_id=f"cam:r1:{n}:{seq}", kind=kind)
              for n, seq, kind in ((1, 0, EventKind.UPDATE), (1, 1, EventKind.FINAL), (2, 0, EventKind.FINAL))]
    with build_sink(sink_config(redis_server.url, tmp_path)) as sink:
        sink.publish(events)
    with build_sink(DirectorySinkConfig(path=tmp_path / "directory")) as directory:
        directory.publish(events)
    out = tmp_path / "received"
    consumer = BestShotConsumer(ConsumerSettings(redis_server.url, "fiqa:bestshots", "g", "c1", out, block_ms=200))
    assert consumer.run(threading.Event(), idle_exit=0.4) == 3
    consumer.close()
    crops = [json.loads(line)["crop"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert crops == ["crops/cam/r1-000001-0-update.jpg", "crops/cam/r1-000001-1-final.jpg",
                     "crops/cam/r1-000002-0-final.jpg"]
    written = [json.loads(line)["crop"] for line in (tmp_path / "directory" / "events.jsonl").read_text().splitlines()]
    assert written == crops
    assert all((out / crop).read_bytes() == (tmp_path / "directory" / crop).read_bytes() for crop in crops)


def test_an_entry_whose_source_would_write_outside_the_folder_is_dead_lettered_with_the_field_named(
    redis_server: Any, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.xadd("fiqa:bestshots", {**entry_fields(event(1), None), "source": "../../outside"})
    out = tmp_path / "top" / "received"  # the crop would have gone to top/outside/
    consumer = BestShotConsumer(ConsumerSettings(redis_server.url, "fiqa:bestshots", "g", "c1", out, block_ms=200))
    assert consumer.run(threading.Event(), idle_exit=0.4) == 1
    consumer.close()
    [(_, dead)] = client.xrange("fiqa:bestshots:dead")
    assert dead[b"dead_error"].decode() == (
        "field 'source': '../../outside' is not a plain file name (letters, digits, '.', '_', '-')")
    assert [p for p in (tmp_path / "top").rglob("*") if p.is_file()] == []


def test_a_consumer_that_stopped_at_a_poison_entry_moves_it_aside_on_restart(
    redis_server: Any, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.xadd("fiqa:bestshots", {**entry_fields(event(1), None), "box": "not json"})
    client.xadd("fiqa:bestshots", entry_fields(event(2), None))
    client.xgroup_create("fiqa:bestshots", "g", id="0")
    client.xreadgroup("g", "c1", {"fiqa:bestshots": ">"})  # both pending for c1, as after its crash
    out = tmp_path / "received"
    consumer = BestShotConsumer(ConsumerSettings(redis_server.url, "fiqa:bestshots", "g", "c1", out,
                                                 block_ms=200, dead_letter="quarantine"))
    assert consumer.run(threading.Event(), idle_exit=0.4) == 2
    consumer.close()
    assert [json.loads(line)["event_id"] for line in (out / "events.jsonl").read_text().splitlines()] == ["cam:2:0"]
    assert client.xlen("quarantine") == 1 and b"field 'box'" in client.xrange("quarantine")[0][1][b"dead_error"]
    assert client.xpending("fiqa:bestshots", "g")["pending"] == 0
