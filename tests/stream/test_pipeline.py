"""End to end on real encoded clips: decode, detect, track, score, select, write."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from fiqa_stream.config import Config, parse_config
from fiqa_stream.errors import ConfigError
from fiqa_stream.media.clips import ClipTruth, FaceTruth, corrupt_copy, garbage_file
from fiqa_stream.scorers.weights import SHIPPED
from fiqa_stream.stream.pipeline import Pipeline


def config_for(sources: list[dict], out: Path, **sections: dict) -> Config:
    return parse_config({"sources": sources, "sinks": [{"type": "directory", "path": str(out)}], **sections})


def events_in(out: Path) -> list[dict]:
    path = out / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def face_of(event: dict, clip: ClipTruth) -> FaceTruth:
    """The ground-truth face whose centre is nearest the event's box at its frame."""
    x1, y1, x2, y2 = event["box"]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    visible = [f for f in clip.faces if event["frame_index"] in f.centers]
    return min(visible, key=lambda f: (f.centers[event["frame_index"]][0] - cx) ** 2
               + (f.centers[event["frame_index"]][1] - cy) ** 2)


def assert_one_best_final_per_face(events: list[dict], clip: ClipTruth) -> None:
    finals = [e for e in events if e["kind"] == "final"]
    matched = [face_of(e, clip).face_id for e in finals]
    assert sorted(matched) == [f.face_id for f in clip.faces], f"finals matched faces {matched}"
    for event in finals:
        face = face_of(event, clip)
        first, last = face.best_frames
        assert first <= event["frame_index"] <= last, (
            f"face {face.face_id}: best shot at frame {event['frame_index']}, truth window {face.best_frames}, "
            f"components {event['components']}"
        )


@pytest.mark.slow
def test_every_face_yields_exactly_one_final_event_at_its_best_moment(face_clip: ClipTruth, out_dir: Path) -> None:
    summary = Pipeline(config_for([{"url": str(face_clip.path), "id": "clip"}], out_dir)).run()
    assert summary.ok
    assert summary.sources[0].analysed == face_clip.frame_count
    events = events_in(out_dir)
    assert_one_best_final_per_face(events, face_clip)
    assert len({e["event_id"] for e in events}) == len(events)
    for event in events:
        assert (out_dir / event["crop"]).stat().st_size > 0
        assert event["model"] == f"{SHIPPED['student-utility'].version}+int8" and 0 <= event["quality"] <= 1


@pytest.mark.slow
def test_large_frames_are_detected_downscaled_and_mapped_back(hd_face_clip: ClipTruth, out_dir: Path) -> None:
    Pipeline(config_for([{"url": str(hd_face_clip.path)}], out_dir)).run()
    assert_one_best_final_per_face(events_in(out_dir), hd_face_clip)


def test_a_clip_without_faces_yields_no_event(nonface_clip: ClipTruth, out_dir: Path) -> None:
    summary = Pipeline(config_for([{"url": str(nonface_clip.path)}], out_dir)).run()
    assert summary.ok and summary.sources[0].analysed == nonface_clip.frame_count
    assert events_in(out_dir) == []


@pytest.mark.slow
def test_bad_sources_are_reported_in_the_summary_and_health_and_the_good_one_still_finishes(
    face_clip: ClipTruth, out_dir: Path, tmp_path: Path
) -> None:
    garbage = garbage_file(tmp_path / "broken.mp4")
    pipeline = Pipeline(config_for(
        [{"url": str(garbage)}, {"url": str(tmp_path / "missing.mp4")}, {"url": str(face_clip.path), "id": "good"}],
        out_dir,
    ))
    summary = pipeline.run()
    assert not summary.ok
    assert len(summary.failures) == 2
    assert any("broken.mp4" in f and "cannot open as video" in f for f in summary.failures)
    assert any("missing.mp4" in f and "file not found" in f for f in summary.failures)
    good = next(s for s in summary.sources if s.id == "good")
    assert good.finished and good.error is None and good.analysed == face_clip.frame_count
    missing = next(s for s in summary.sources if s.id == "missing")
    assert (missing.state, missing.analysed, missing.error) == ("failed", 0, summary.failures[0])
    _, health = pipeline.metrics.health(down_after=10.0)
    assert health["sources"] == {"missing": {"state": "failed", "down_for": None},
                                 "broken": {"state": "failed", "down_for": None},
                                 "good": {"state": "done", "down_for": None}}
    assert_one_best_final_per_face(events_in(out_dir), face_clip)


def test_stopping_flushes_the_open_tracks(face_clip: ClipTruth, out_dir: Path) -> None:
    stop = threading.Event()
    seen = {"frames": 0}

    def stop_midway(sources: list) -> None:
        seen["frames"] = sources[0].analysed
        if sources[0].analysed >= face_clip.frame_count // 2:
            stop.set()

    pipeline = Pipeline(
        config_for([{"url": str(face_clip.path)}], out_dir, selection={"min_track_length": 1}),
        on_progress=stop_midway, progress_interval=0.0,
    )
    summary = pipeline.run(stop)
    assert summary.interrupted
    assert summary.sources[0].analysed < face_clip.frame_count
    assert not summary.sources[0].finished, "a stopped source is flushed, not reported as done"
    finals = [e for e in events_in(out_dir) if e["kind"] == "final"]
    assert finals, "open tracks must be flushed as final events on stop"
    assert all(e["frame_index"] < summary.sources[0].analysed for e in finals)


@pytest.mark.slow
def test_sampling_every_nth_frame_still_finds_every_face(face_clip: ClipTruth, out_dir: Path) -> None:
    summary = Pipeline(config_for([{"url": str(face_clip.path), "every": 2}], out_dir)).run()
    assert summary.sources[0].analysed == (face_clip.frame_count + 1) // 2
    finals = [e for e in events_in(out_dir) if e["kind"] == "final"]
    assert sorted(face_of(e, face_clip).face_id for e in finals) == [f.face_id for f in face_clip.faces]
    assert all(e["frame_index"] % 2 == 0 for e in finals)


@pytest.mark.slow
def test_a_truncated_file_fails_its_source_by_the_index_rule_and_the_other_source_finishes(
    face_clip: ClipTruth, out_dir: Path, tmp_path: Path
) -> None:
    cut = corrupt_copy(face_clip.path, tmp_path / "cut.mp4", keep_fraction=0.5)
    summary = Pipeline(config_for([{"url": str(cut), "id": "cut"}, {"url": str(face_clip.path), "id": "good"}],
                                  out_dir, scorer={"type": "heuristic"})).run()
    damaged, good = summary.sources
    assert 0 < damaged.decoded < face_clip.frame_count and damaged.analysed == damaged.decoded
    assert summary.failures == [
        f"{cut}: truncated or damaged: decoded {damaged.decoded} of {face_clip.frame_count} frames"
    ]
    assert damaged.error == summary.failures[0] and not summary.ok
    assert good.finished and good.error is None and good.analysed == face_clip.frame_count


def test_the_pipeline_reports_its_redis_sink_replay_in_health_and_metrics(
    nonface_clip: ClipTruth, out_dir: Path, redis_server: Any
) -> None:
    config = parse_config({
        "sources": [{"url": str(nonface_clip.path)}],
        "sinks": [{"type": "redis", "url": redis_server.url, "journal": {"path": str(out_dir / "journal.sqlite3")}}],
    })
    pipeline = Pipeline(config)
    healthy, body = pipeline.metrics.health(down_after=10.0)
    assert healthy
    assert body["sinks"] == {"redis": {"replay": "ok", "replay_restarts": 0, "journal_depth": 0, "unspilled": 0}}
    assert pipeline.run().ok


def test_a_metrics_port_in_use_is_a_config_error_that_leaves_no_sink_open(redis_server: Any, tmp_path: Path) -> None:
    replaying_before = sum(thread.name == "redis-replay" for thread in threading.enumerate())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = parse_config({
            "sources": [{"url": "demo:"}],
            "sinks": [{"type": "redis", "url": redis_server.url, "journal": {"path": str(tmp_path / "j.sqlite3")}}],
            "metrics": {"enabled": True, "port": port},
        })
        with pytest.raises(ConfigError) as caught:
            Pipeline(config)
    assert str(caught.value) == (
        f"metrics.port: 127.0.0.1:{port} is already in use; choose another port (0: any free port)"
    )
    assert sum(thread.name == "redis-replay" for thread in threading.enumerate()) == replaying_before
