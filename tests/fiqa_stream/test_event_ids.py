"""Event ids are unique across runs and restarts: a de-duplicating consumer drops no real best shot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fiqa_stream.media.clips import ClipTruth

FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


def fiqa_stream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FIQA_STREAM, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_two_files_with_the_same_stem_and_a_rerun_reach_a_consumer_without_a_repeat(
    face_clip: ClipTruth, tmp_path: Path, redis_server: Any
) -> None:
    clips = [tmp_path / "monday" / "door.mp4", tmp_path / "tuesday" / "door.mp4"]
    for clip in clips:
        clip.parent.mkdir()
        shutil.copy(face_clip.path, clip)
    sinks = (f"sinks: [{{type: redis, url: '{redis_server.url}', journal: {{path: '{tmp_path / 'journal.sqlite3'}'}}}},"
             f" {{type: directory, path: '{tmp_path / 'out'}'}}]\n")
    config = tmp_path / "to-redis.yaml"
    # Two files named alike, then the first again (as a camera restarts): three runs of source "door".
    for clip in [*clips, clips[0]]:
        config.write_text(f"sources: [{{url: '{clip}'}}]\n" + sinks)
        result = fiqa_stream("run", str(config))
        assert result.returncode == 0, result.stderr

    written = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    assert len(written) == 3 * len(face_clip.faces)
    assert len({e["event_id"] for e in written}) == len(written)
    assert len({e["run_id"] for e in written}) == 3
    assert all(e["source"] == "door" and e["event_id"].startswith(f"door:{e['run_id']}:") for e in written)
    assert len({e["crop"] for e in written}) == len(written)

    received = tmp_path / "received"
    consumed = fiqa_stream("consume", "--url", redis_server.url, "--group", "g", "--out", str(received),
                           "--idle-exit", "1")
    assert consumed.returncode == 0, consumed.stderr
    assert "0 repeats dropped" in consumed.stdout
    delivered = [json.loads(line)["event_id"] for line in (received / "events.jsonl").read_text().splitlines()]
    assert delivered == [e["event_id"] for e in written]
