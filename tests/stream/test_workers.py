"""Sharding sources over worker processes (``pipeline.workers: N``)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.stream.synthetic import ClipTruth
from fiqa_stream.stream.workers import run_sharded

pytestmark = pytest.mark.slow


def sharded_config(clip: ClipTruth, out: Path, sources: int) -> dict:
    return {
        "sources": [{"url": str(clip.path), "id": f"cam{n}"} for n in range(sources)],
        "sinks": [{"type": "directory", "path": str(out)}],
        "scorer": {"type": "heuristic"},
        "pipeline": {"workers": 2},
    }


def test_two_workers_share_the_sources_and_every_face_of_each_comes_out(face_clip: ClipTruth, tmp_path: Path) -> None:
    summary = run_sharded(parse_config(sharded_config(face_clip, tmp_path, 2)), threading.Event())
    assert summary.ok, summary.failures
    assert sorted(s.id for s in summary.sources) == ["cam0", "cam1"]
    assert all(s.analysed == face_clip.frame_count for s in summary.sources)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    for source in ("cam0", "cam1"):
        assert len([e for e in events if e["source"] == source and e["kind"] == "final"]) == len(face_clip.faces)


def test_a_stop_request_reaches_the_workers_and_their_open_tracks_are_flushed(
    face_clip: ClipTruth, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    stop = threading.Event()

    def stop_after_the_first_event() -> None:
        while not (events.exists() and events.read_text()):
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=stop_after_the_first_event, daemon=True).start()
    summary = run_sharded(parse_config(sharded_config(face_clip, tmp_path, 4)), stop)
    stopped_at = time.monotonic()
    assert summary.interrupted
    assert time.monotonic() - stopped_at < 30
    finals = [json.loads(line) for line in events.read_text().splitlines()]
    # Each clip's faces overlap in time: when the first one ends, others are open and must be flushed.
    assert len(finals) > 1 and all(e["kind"] == "final" for e in finals)
