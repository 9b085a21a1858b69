"""Live cameras against a real RTSP server: play, outage and reconnect, stall, bad
credentials and paths, metrics, credentials kept out of every output, and an even share
of analysis for every camera when it cannot keep up with them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fiqa_stream.config import Config, parse_config
from fiqa_stream.media.clips import ClipTruth, compose_face_clip
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.live import LiveSource
from fiqa_stream.stream.pipeline import Pipeline, RunSummary, SourceStats
from fiqa_stream.stream.source_base import SourceEnd, SourceOutage

pytestmark = pytest.mark.slow
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def live_config(sources: list[dict], out: Path, **sections: Any) -> Config:
    return parse_config({"sources": sources, "sinks": [{"type": "directory", "path": str(out)}],
                         "selection": {"min_track_length": 2}, **sections})


def events_in(out: Path) -> list[dict]:
    path = out / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


class Running:
    """A pipeline running in a thread, with its latest per-source statistics."""

    def __init__(self, config: Config) -> None:
        self.stats: dict[str, SourceStats] = {}
        self.stop = threading.Event()
        self.pipeline = Pipeline(config, on_progress=self._progress, progress_interval=0.05)
        self.summary: RunSummary | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _progress(self, sources: list[SourceStats]) -> None:
        self.stats = {s.id: SourceStats(**{f: getattr(s, f) for f in SourceStats.__slots__}) for s in sources}

    def _run(self) -> None:
        self.summary = self.pipeline.run(self.stop)

    def analysed(self, source: str) -> int:
        return self.stats[source].analysed if source in self.stats else 0

    def finish(self) -> RunSummary:
        self.stop.set()
        self.thread.join(60)
        assert self.summary is not None
        return self.summary


@pytest.fixture
def start_pipeline() -> Iterator[Callable[[Config], Running]]:
    """Starts pipelines in threads and stops every one of them, even after a failed assertion."""
    started: list[Running] = []

    def start(config: Config) -> Running:
        started.append(Running(config))
        return started[-1]

    yield start
    for running in started:
        running.stop.set()
        running.thread.join(60)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def drain(source: LiveSource, buffer: FrameBuffer, seconds: float) -> list[object]:
    items: list[object] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        item = buffer.get_nowait()
        if item is None:
            time.sleep(0.01)
            continue
        items.append(item)
        if isinstance(item, SourceEnd):
            break
    return items


def test_a_camera_plays_and_its_faces_come_out_as_best_shots(
    rtsp_camera: Any, out_dir: Path, start_pipeline: Callable[[Config], Running]
) -> None:
    running = start_pipeline(live_config([{"url": rtsp_camera.url(), "id": "cam"}], out_dir))
    wait_for(lambda: running.analysed("cam") >= 150, 60, "150 analysed live frames")
    summary = running.finish()
    events = events_in(out_dir)
    assert events, "faces in the live stream must give best shots"
    assert all(e["source"] == "cam" and e["captured_at"] for e in events)
    assert summary.sources[0].state in ("stopped", "streaming")


def test_an_outage_flushes_tracks_and_reconnects_while_another_camera_keeps_running(
    face_clip: ClipTruth, rtsp_servers: Callable[..., Any], out_dir: Path,
    start_pipeline: Callable[[Config], Running],
) -> None:
    door, gate = rtsp_servers([face_clip.path]), rtsp_servers([face_clip.path])
    reconnect = {"initial_delay": 0.3, "max_delay": 1.0}
    running = start_pipeline(live_config([
        {"url": door.url(), "id": "door", "reconnect": reconnect, "read_timeout": 2},
        {"url": gate.url(), "id": "gate", "reconnect": reconnect, "read_timeout": 2},
    ], out_dir))
    wait_for(lambda: running.analysed("door") >= 60 and running.analysed("gate") >= 60, 60, "both cameras")
    door.kill()
    wait_for(lambda: running.stats["door"].state == "backoff", 15, "the outage to be noticed")
    # The sinks write after the analysis loop has taken the outage marker, so the finals
    # come a little after the state: they must come while the camera is still down.
    wait_for(lambda: any(e["source"] == "door" and e["kind"] == "final" for e in events_in(out_dir)), 10,
             "the outage to end the camera's open tracks with final events")
    gate_before = running.analysed("gate")
    time.sleep(3.0)
    assert running.analysed("gate") > gate_before + 25, "the other camera must keep running"
    door.start()
    door_after_restart = running.analysed("door")
    wait_for(lambda: running.stats["door"].state == "streaming" and running.analysed("door") > door_after_restart + 50,
             30, "the camera to come back")
    summary = running.finish()
    door_stats = next(s for s in summary.sources if s.id == "door")
    assert door_stats.outages >= 1 and door_stats.reconnects >= 1
    events = events_in(out_dir)
    assert len({e["event_id"] for e in events}) == len(events), "event ids stay unique across the outage"
    assert any(e["source"] == "door" and e["pts"] is not None for e in events)


def test_a_stalled_stream_is_detected_by_the_read_timeout(rtsp_camera: Any) -> None:
    config = SourceConfig(url=rtsp_camera.url(), read_timeout=1.0, reconnect={"max_attempts": 1})
    buffer: FrameBuffer = FrameBuffer(4, "drop_oldest", threading.Condition())
    stop = threading.Event()
    source = LiveSource("cam", config, buffer, stop)
    source.start()
    wait_for(lambda: source.decoded >= 10, 20, "frames")
    rtsp_camera.freeze()
    frozen_at = time.monotonic()
    items = drain(source, buffer, 15)
    outage = next(item for item in items if isinstance(item, SourceOutage))
    assert "stalled" in str(outage.error) or "timed out" in str(outage.error).lower()
    assert time.monotonic() - frozen_at < 8
    stop.set()
    source.join(5)


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong password", "wrong credentials"),
    ("wrong path", "unknown path on the server (404)"),
    ("dead host", "host unreachable: connection refused"),
])
def test_bad_cameras_give_clear_errors_without_the_password(
    face_clip: ClipTruth, rtsp_servers: Callable[..., Any], case: str, expected: str
) -> None:
    server = rtsp_servers([face_clip.path], user="admin", password="Secr3t!")
    url, password = {
        "wrong password": (server.url(), "nope-Wr0ng"),
        "wrong path": (server.url("/nowhere"), "Secr3t!"),
        "dead host": (f"rtsp://127.0.0.1:{server.port + 1 if server.port < 65535 else 1}/cam", "Secr3t!"),
    }[case]
    config = SourceConfig(url=url, username="admin", password=password, open_timeout=3,
                          reconnect={"max_attempts": 1})
    buffer: FrameBuffer = FrameBuffer(4, "drop_oldest", threading.Condition())
    source = LiveSource("cam", config, buffer, threading.Event())
    source.start()
    end = next(item for item in drain(source, buffer, 20) if isinstance(item, SourceEnd))
    assert end.error is not None
    message = str(end.error)
    assert expected in message and message.startswith("source 'cam' (rtsp://127.0.0.1:")
    assert password not in message and "Secr3t" not in message


def test_a_camera_whose_frames_are_larger_than_the_limit_fails_with_their_size(
    rtsp_camera: Any, start_pipeline: Callable[[Config], Running], out_dir: Path, face_clip: ClipTruth
) -> None:
    camera = {"url": rtsp_camera.url(), "id": "cam", "max_frame_pixels": 100_000, "open_timeout": 5,
              "reconnect": {"max_attempts": 1}}
    running = start_pipeline(live_config([camera, {"url": str(face_clip.path), "id": "file"}], out_dir))
    running.thread.join(120)
    summary = running.finish()
    errors = {s.id: s.error for s in summary.sources}
    too_large = f"source 'cam' ({rtsp_camera.url()}): frame 640×360 is larger than the limit (max_frame_pixels 100000)"
    assert errors == {"cam": f"source 'cam' ({rtsp_camera.url()}): given up after 1 failed attempts: {too_large}",
                      "file": None}
    assert {e["source"] for e in events_in(out_dir)} == {"file"}


def test_credentials_from_the_config_reach_the_camera_but_no_output(
    face_clip: ClipTruth, rtsp_servers: Callable[..., Any], out_dir: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, start_pipeline: Callable[[Config], Running],
) -> None:
    server = rtsp_servers([face_clip.path], user="admin", password="Secr3t!")
    monkeypatch.setenv("CAM_PASSWORD", "Secr3t!")
    running = start_pipeline(live_config(
        [{"url": server.url(), "id": "cam", "username": "admin", "password": "${CAM_PASSWORD}"}], out_dir,
        metrics={"enabled": True, "port": 0},
    ))
    wait_for(lambda: running.analysed("cam") >= 100, 60, "frames through an authenticated stream")
    address = running.pipeline.metrics_server.address
    scraped = fetch(f"http://{address}/metrics")
    running.finish()
    outputs = [caplog.text, scraped, (out_dir / "events.jsonl").read_text() if (out_dir / "events.jsonl").exists()
               else ""]
    assert all("Secr3t" not in text for text in outputs)


def test_metrics_move_and_health_follows_the_camera(
    rtsp_camera: Any, out_dir: Path, start_pipeline: Callable[[Config], Running]
) -> None:
    running = start_pipeline(live_config(
        [{"url": rtsp_camera.url(), "id": "cam", "reconnect": {"initial_delay": 0.3, "max_delay": 1}}], out_dir,
        metrics={"enabled": True, "port": 0, "down_after": 1.0},
    ))
    address = running.pipeline.metrics_server.address

    def scrape() -> dict[str, float]:
        text = fetch(f"http://{address}/metrics")
        values = {}
        for line in text.splitlines():
            if line.startswith("fiqa_") and 'source="cam"' in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    wait_for(lambda: running.analysed("cam") >= 30, 30, "frames")
    first = scrape()
    time.sleep(1.0)
    second = scrape()
    assert second['fiqa_frames_decoded_total{source="cam"}'] > first['fiqa_frames_decoded_total{source="cam"}']
    assert second['fiqa_frames_analysed_total{source="cam"}'] > first['fiqa_frames_analysed_total{source="cam"}']
    assert second['fiqa_source_up{source="cam"}'] == 1.0
    assert second['fiqa_source_state{source="cam",state="streaming"}'] == 1.0
    assert 'fiqa_frame_latency_seconds_count{source="cam"}' in second
    health = json.loads(fetch(f"http://{address}/healthz"))
    assert health["status"] == "ok"

    rtsp_camera.kill()
    wait_for(lambda: scrape()['fiqa_reconnects_total{source="cam"}'] >= 1, 20, "a reconnection attempt")
    time.sleep(1.5)  # down_after
    with pytest.raises(urllib.error.HTTPError) as unhealthy:
        fetch(f"http://{address}/healthz")
    assert unhealthy.value.code == 503
    body = json.loads(unhealthy.value.read())
    unhealthy.value.close()
    assert body["sources"]["cam"]["state"] in ("backoff", "connecting")
    running.finish()


def test_the_shipped_camera_config_serves_metrics_and_flushes_on_sigterm(
    face_clip: ClipTruth, rtsp_servers: Callable[..., Any], tmp_path: Path, unused_port: int
) -> None:
    server = rtsp_servers([face_clip.path, face_clip.path])
    out, port = tmp_path / "out", unused_port
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("fiqa-stream")), "run", str(CONFIGS / "rtsp-cameras.yaml")],
        env={**os.environ, "FIQA_CAMERA_1": server.url("/cam"), "FIQA_CAMERA_2": server.url("/cam2"),
             "FIQA_OUT": str(out), "FIQA_METRICS_PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def best_shots_of_both() -> bool:
            try:
                text = fetch(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                return False
            updates = [line for line in text.splitlines() if line.startswith("fiqa_best_shots_total")]
            return {source for source in ("camera-1", "camera-2") if any(source in line for line in updates)} == {
                "camera-1", "camera-2"}

        # The periodic policy's first update events say both cameras have faces tracked right now.
        wait_for(best_shots_of_both, 90, "update events of both cameras, as the metrics endpoint tells")
        assert json.loads(fetch(f"http://127.0.0.1:{port}/healthz"))["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr  # interrupted, after the flush
    assert "SIGTERM: flushing open tracks" in stderr
    finals = [e for e in events_in(out) if e["kind"] == "final"]
    assert {e["source"] for e in finals} == {"camera-1", "camera-2"}, "open tracks of both cameras are flushed"


@pytest.mark.parametrize("max_wait_ms", [0, 900])
def test_dynamic_batching_gathers_frames_of_several_cameras_per_batch(
    face_clip: ClipTruth, rtsp_servers: Callable[..., Any], out_dir: Path,
    start_pipeline: Callable[[Config], Running], max_wait_ms: int,
) -> None:
    server = rtsp_servers([face_clip.path, face_clip.path])
    running = start_pipeline(live_config(
        [{"url": server.url(mount), "id": name, "fps": 5, "live_queue_size": 4}
         for mount, name in (("/cam", "a"), ("/cam2", "b"))],
        out_dir, pipeline={"batch_frames": 6, "max_wait_ms": max_wait_ms}, scorer={"type": "heuristic"},
    ))
    wait_for(lambda: running.analysed("a") + running.analysed("b") >= 48, 60, "frames of both cameras")
    registry = running.pipeline.metrics.registry
    occupancy = registry.get_sample_value("fiqa_batch_frames_sum") / registry.get_sample_value(
        "fiqa_batch_frames_count")
    running.finish()
    # Two cameras analysed at 5 fps give a frame every 100 ms, far slower than analysis: taken
    # at once, a batch holds about one frame; waiting up to 900 ms fills the batch of 6.
    if max_wait_ms:
        assert occupancy > 4
    else:
        assert occupancy < 2.5


def test_when_analysis_cannot_keep_up_every_camera_degrades_evenly_and_the_metrics_say_so(
    rtsp_servers: Callable[..., Any], out_dir: Path, tmp_path: Path,
    start_pipeline: Callable[[Config], Running],
) -> None:
    # Longer than the shared 5 s clip: a camera whose stream ends reconnects, which would
    # count against its share.
    clip = compose_face_clip(tmp_path / "faces-12s.mp4", width=640, height=360, fps=25.0, seconds=12.0, faces=3)
    cameras = [f"cam{n}" for n in range(10)]
    server = rtsp_servers([clip.path] * len(cameras))
    mounts = ["/cam", *(f"/cam{n + 1}" for n in range(1, len(cameras)))]
    # Ten cameras of every frame (25 frames/s each, 250 in all) against the real detector:
    # more than analysis can do, and more cameras with a frame waiting than a batch holds.
    running = start_pipeline(live_config(
        [{"url": server.url(mount), "id": name} for mount, name in zip(mounts, cameras, strict=True)],
        out_dir, scorer={"type": "heuristic"},
    ))
    wait_for(lambda: all(name in running.stats and running.stats[name].state == "streaming" for name in cameras),
             20, "every camera streaming")
    time.sleep(1.0)
    before = {name: running.analysed(name) for name in cameras}
    time.sleep(3.0)
    analysed = {name: running.analysed(name) - before[name] for name in cameras}
    registry = running.pipeline.metrics.registry
    overloaded = registry.get_sample_value("fiqa_pipeline_overloaded")
    fairness = registry.get_sample_value("fiqa_pipeline_fairness")
    rates = {name: registry.get_sample_value("fiqa_source_analysed_fps", {"source": name}) for name in cameras}
    summary = running.finish()
    mean = sum(analysed.values()) / len(cameras)
    assert mean < 0.9 * 25 * 3, "the cameras must offer more than analysis can do"
    assert min(analysed.values()) >= 0.5 * mean, f"a camera fell below half the mean: {analysed}"
    assert overloaded == 1.0
    assert fairness is not None and fairness >= 0.5
    assert all(rate is not None and rate > 0 for rate in rates.values())
    assert summary.overloaded_seconds > 0
