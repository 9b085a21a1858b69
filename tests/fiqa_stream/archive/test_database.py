"""The archive index database: one row per video content, crash-consistent crops."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fiqa_stream.archive.database import ArchiveIndex, ShotRecord, VideoOutcome, VideoStatus
from fiqa_stream.errors import ArchiveIndexError

FP = "0123456789abcdef" * 2


def shot(track: int, quality: float, time: float) -> ShotRecord:
    return ShotRecord(track_id=track, event_id=f"{FP[:16]}:{track}:0", frame_index=int(time * 10), time=time,
                      first_seen=0.0, last_seen=time + 1, sightings=5, box=(1.0, 2.0, 30.0, 40.0), landmarks=None,
                      quality=quality, components={"sharpness": quality}, model="heuristic-1",
                      crop_jpeg=b"\xff\xd8jpeg")


def test_recording_a_video_again_replaces_its_rows_and_stray_crops(tmp_path: Path) -> None:
    with ArchiveIndex(tmp_path) as index:
        index.upsert_pending(FP, "/videos/a.mp4", 10, 1)
        stray = tmp_path / "crops" / FP[:16] / "000009-0.jpg"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"left by a killed attempt")
        for _ in range(2):
            index.record(VideoOutcome(FP, VideoStatus.DONE, None, shots=(shot(1, 0.5, 1.0), shot(2, 0.9, 2.0))))
        assert index.counts() == {"videos": 1, "tracks": 2, "best_shots": 2}
        assert not stray.exists()
        assert [s.track_id for s in index.shots()] == [2, 1]  # best first
        assert [s.track_id for s in index.shots(min_quality=0.6)] == [2]
        assert [s.track_id for s in index.shots(between=(0.5, 1.5))] == [1]
        assert index.crop_file(index.shots()[0].crop).read_bytes() == b"\xff\xd8jpeg"
        index.record(VideoOutcome(FP, VideoStatus.FAILED, "broken"))
        assert index.counts() == {"videos": 1, "tracks": 0, "best_shots": 0}
        assert not (tmp_path / "crops" / FP[:16]).exists()


def test_crop_paths_outside_the_folder_are_refused(tmp_path: Path) -> None:
    with ArchiveIndex(tmp_path) as index, pytest.raises(ArchiveIndexError, match="outside the index folder"):
        index.crop_file("../../etc/passwd")


def test_an_index_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    ArchiveIndex(tmp_path).close()
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ArchiveIndexError, match="schema version 99 is newer"):
        ArchiveIndex(tmp_path)


def test_an_index_of_schema_1_gains_the_dropped_faces_column_and_keeps_its_rows(tmp_path: Path) -> None:
    with ArchiveIndex(tmp_path) as index:
        index.upsert_pending(FP, "/videos/a.mp4", 10, 1)
        index.record(VideoOutcome(FP, VideoStatus.DONE, None, shots=(shot(1, 0.5, 1.0),)))
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:  # back to what fiqa-stream wrote before schema 2
        db.execute("ALTER TABLE videos DROP COLUMN dropped_faces")
        db.execute("PRAGMA user_version = 1")
    with ArchiveIndex(tmp_path, create=False) as index:
        [video] = index.videos()
        assert video.dropped_faces is None and index.counts()["best_shots"] == 1
        index.record(VideoOutcome(FP, VideoStatus.DONE, None, dropped_faces="3 narrower than x"))
        assert index.videos()[0].dropped_faces == "3 narrower than x"
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
