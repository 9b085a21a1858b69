"""Finding, fingerprinting and safely opening archive videos."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fiqa_stream.archive.analysis import VideoJob, analyse_video, find_videos, fingerprint
from fiqa_stream.archive.database import VideoStatus
from fiqa_stream.archive.ray_cluster import gpus_per_task
from fiqa_stream.config import Config, parse_config
from fiqa_stream.models import build_models

if TYPE_CHECKING:
    from conftest import VideoArchive


def test_folders_are_walked_for_videos_and_named_files_taken_as_they_are(video_archive: VideoArchive) -> None:
    folder = video_archive.folder
    found = find_videos([str(folder), str(folder / "notes.txt"), str(folder / "*.mp4"), str(folder / "gone")])
    names = [f.path.relative_to(folder).as_posix() for f in found.files]
    assert sorted(names) == sorted([*video_archive.good, *video_archive.bad, "notes.txt"])  # each once
    assert found.errors == [f"{folder / 'gone'}: file not found"]


def test_links_out_of_the_given_folders_are_skipped_and_logged_unless_asked(
    video_archive: VideoArchive, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive, outside = tmp_path / "archive", tmp_path / "outside"
    (archive / "day1").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(video_archive.folder / "lobby.mp4", archive / "day1" / "lobby.mp4")
    shutil.copy(video_archive.folder / "gate.mp4", outside / "gate.mp4")
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (archive / "passwd.mp4").symlink_to(outside / "passwd")
    (archive / "gate.mp4").symlink_to(outside / "gate.mp4")
    (archive / "day1-again.mp4").symlink_to(archive / "day1" / "lobby.mp4")  # inside: followed
    (archive / "elsewhere").symlink_to(outside, target_is_directory=True)  # never walked into

    for inputs in ([str(archive)], [str(archive / "*.mp4"), str(archive / "day1")]):
        caplog.clear()
        found = find_videos(inputs)
        assert [f.path for f in found.files] == [archive / "day1" / "lobby.mp4"]
        assert found.links_skipped == [archive / "gate.mp4", archive / "passwd.mp4"]
        assert [r.getMessage() for r in caplog.records] == [
            f"{archive / name}: links outside the archive roots; skipped (--follow-links to allow)"
            for name in ("gate.mp4", "passwd.mp4")
        ]
    followed = find_videos([str(archive)], follow_links=True)
    assert {f.path for f in followed.files} == {archive / "day1" / "lobby.mp4", outside / "gate.mp4",
                                                outside / "passwd"}
    assert followed.links_skipped == []
    # Two given folders are both roots; a file named on its own is taken wherever it leads.
    assert len(find_videos([str(archive), str(outside)]).files) == 3
    assert [f.path for f in find_videos([str(archive / "gate.mp4")]).files] == [outside / "gate.mp4"]


def test_the_fingerprint_follows_the_content_not_the_name(video_archive: VideoArchive, tmp_path: Path) -> None:
    copy = shutil.copy(video_archive.folder / "lobby.mp4", tmp_path / "renamed.mkv")
    assert fingerprint(Path(copy)) == fingerprint(video_archive.folder / "lobby.mp4")
    assert fingerprint(Path(copy)) != fingerprint(video_archive.folder / "gate.mp4")


def test_a_playlist_posing_as_a_video_is_not_followed(video_archive: VideoArchive, tmp_path: Path) -> None:
    # An HLS playlist would make FFmpeg read another local file; only video containers are opened.
    evil = tmp_path / "evil.m3u8"
    evil.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{video_archive.folder / 'lobby.mp4'}\n"
                    "#EXT-X-ENDLIST\n")
    config = parse_config({"sources": [{"url": "-"}], "sinks": [{"type": "directory", "path": "-"}],
                           "scorer": {"type": "heuristic"}})
    job = VideoJob(fingerprint(evil), str(evil), evil.stat().st_size)
    with build_models(config.detector, config.scorer, config.device) as models:
        result = analyse_video(job, config, models, threading.Event(), "test")
    assert result.outcome.status is VideoStatus.FAILED
    assert result.outcome.error is not None and "cannot open as video" in result.outcome.error


def test_a_ray_task_asks_for_a_gpu_exactly_when_the_models_run_on_cuda() -> None:
    def config(device: str) -> Config:
        return parse_config({"sources": [{"url": "-"}], "sinks": [{"type": "directory", "path": "-"}],
                             "device": device})

    assert gpus_per_task(config("cuda:1")) == 1
    assert gpus_per_task(config("cuda")) == 1
    assert gpus_per_task(config("cpu")) == 0
    assert gpus_per_task(config("auto")) == 0
