"""Sharding sources over worker processes (``pipeline.workers: N``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.media.clips import ClipTruth
from fiqa_stream.stream.workers import run_sharded

pytestmark = pytest.mark.slow

FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


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


def _stat(pid: int) -> list[str] | None:
    """State, parent pid, ... of a process (fields 3 on of /proc/PID/stat), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> dict[int, str]:
    """Child pid -> start time (to tell a reused pid apart)."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            found[int(entry.name)] = fields[19]
    return found


def _alive(pid: int, started: str) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X") and fields[19] == started


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_workers_flush_and_exit_when_their_parent_is_killed_with_sigkill(face_clip: ClipTruth, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    # Three files a worker, decoded side by side: the first track closes about 70 % into
    # the run, so open tracks remain for the kill (20 files took 90 s to the first event).
    for n in range(6):
        shutil.copy(face_clip.path, videos / f"part{n:02d}.mp4")
    out = tmp_path / "out"
    config = tmp_path / "workers.yaml"
    config.write_text(json.dumps({
        "sources": [{"url": str(videos)}], "sinks": [{"type": "directory", "path": str(out)}],
        "scorer": {"type": "heuristic"}, "pipeline": {"workers": 2},
    }))
    events = out / "events.jsonl"
    # Files, not pipes: orphaned workers keep the parent's stdout and stderr.
    with open(tmp_path / "stdout", "wb") as stdout, open(tmp_path / "stderr", "wb") as stderr:
        parent = subprocess.Popen([FIQA_STREAM, "run", str(config)], stdout=stdout, stderr=stderr)
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and parent.poll() is None:
            children = _children(parent.pid)
            if len([pid for pid in children if _is_worker(pid)]) == 2 and events.exists() and events.read_text():
                break
            time.sleep(0.05)
        assert parent.poll() is None, (tmp_path / "stderr").read_text()
        assert len([pid for pid in children if _is_worker(pid)]) == 2, "both workers were running"
        before = len(events.read_text().splitlines())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        killed_at = time.monotonic()
        while any(_alive(pid, started) for pid, started in children.items()) and time.monotonic() - killed_at < 10:
            time.sleep(0.1)
        assert [pid for pid, started in children.items() if _alive(pid, started)] == []
    finally:
        for pid, started in children.items():
            if _alive(pid, started):
                os.kill(pid, signal.SIGKILL)
    assert "parent process" in (tmp_path / "stderr").read_text()
    finals = [json.loads(line) for line in events.read_text().splitlines()]
    # The tracks open at the kill were flushed: more events, each final and with its crop.
    assert len(finals) > before and all(e["kind"] == "final" for e in finals)
    assert all((out / e["crop"]).stat().st_size > 0 for e in finals)
