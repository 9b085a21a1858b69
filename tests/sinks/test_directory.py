"""Directory sink: crops as JPEG, one JSON line per event with the documented fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_stream.errors import SinkError
from fiqa_stream.sinks import build_sink
from fiqa_stream.sinks.config import DirectorySinkConfig
from fiqa_stream.types import BestShot, EventKind

DOCUMENTED_FIELDS = {
    "event_id", "run_id", "schema", "kind", "source", "track_id", "frame_index", "pts", "captured_at",
    "first_seen", "last_seen", "box",
    "first_frame_index", "first_box", "landmarks", "quality", "components", "model", "crop", "sightings",
    "decided_at",
}


def event(track_id: int = 4, seq: int = 0, captured: datetime | None = None) -> BestShot:
    ok, jpeg = cv2.imencode(".jpg", np.full((40, 30, 3), 128, np.uint8))
    assert ok
    return BestShot(
        event_id=f"cam-1:{track_id}:{seq}", run_id="r1", kind=EventKind.FINAL, source="cam-1", track_id=track_id,
        frame_index=17, pts=0.68, captured_at=captured, first_seen=0.2, last_seen=1.4,
        box=(10.0, 20.0, 40.0, 60.0), landmarks=((15.0, 30.0),) * 5, quality=0.8125,
        components={"sharpness": 0.9, "pose": 0.7}, model="heuristic-1", crop_jpeg=jpeg.tobytes(), sightings=9,
        decided_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC), first_frame_index=5, first_box=(12.0, 22.0, 41.0, 63.0),
    )


def read_events(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]


def test_an_event_is_one_json_line_with_exactly_the_documented_fields(tmp_path: Path) -> None:
    with build_sink(DirectorySinkConfig(path=tmp_path)) as sink:
        sink.publish([event(captured=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))])
    [line] = read_events(tmp_path)
    assert set(line) == DOCUMENTED_FIELDS
    assert line["event_id"] == "cam-1:4:0"
    assert line["kind"] == "final" and line["schema"] == 2
    assert line["box"] == [10.0, 20.0, 40.0, 60.0]
    assert line["landmarks"] == [[15.0, 30.0]] * 5
    assert line["first_frame_index"] == 5 and line["first_box"] == [12.0, 22.0, 41.0, 63.0]
    assert line["captured_at"] == "2026-01-02T03:04:05+00:00"
    assert line["components"] == {"sharpness": 0.9, "pose": 0.7}


def test_the_crop_path_is_relative_and_holds_the_jpeg(tmp_path: Path) -> None:
    with build_sink(DirectorySinkConfig(path=tmp_path)) as sink:
        sink.publish([event()])
    [line] = read_events(tmp_path)
    crop = tmp_path / line["crop"]
    assert not Path(line["crop"]).is_absolute()
    assert cv2.imread(str(crop)).shape == (40, 30, 3)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_events_are_appended_across_runs(tmp_path: Path) -> None:
    for seq in range(2):
        with build_sink(DirectorySinkConfig(path=tmp_path, fsync=False)) as sink:
            sink.publish([event(seq=seq), event(track_id=5, seq=seq)])
    assert [e["event_id"] for e in read_events(tmp_path)] == [
        "cam-1:4:0", "cam-1:5:0", "cam-1:4:1", "cam-1:5:1",
    ]


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SinkError, match=r"directory sink '.*file/out': cannot write there"):
        build_sink(DirectorySinkConfig(path=blocker / "out"))


def test_temporary_crops_left_by_a_crash_are_removed_at_start_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crops = tmp_path / "crops"
    (crops / "long").mkdir(parents=True)
    leftovers = [crops / "long" / ".000006-3-update.jpg.tmp", crops / ".000001-0-final.jpg.tmp"]
    kept = [crops / "long" / "000006-2-update.jpg", crops / "long" / ".hidden", crops / "long" / "notes.tmp",
            crops / "long" / ".draft.png.tmp", tmp_path / ".000009-0-final.jpg.tmp"]
    for path in leftovers + kept:
        path.write_bytes(b"partial jpeg")
    with caplog.at_level("INFO", logger="fiqa_stream.sinks.directory"), build_sink(DirectorySinkConfig(path=tmp_path)):
        pass
    assert [p for p in leftovers if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
    assert "removed 2 temporary crop file(s)" in caplog.text
