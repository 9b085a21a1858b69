"""Finding, fingerprinting and safely opening archive videos."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from fiqa_stream.config import config_data, parse_config
from fiqa_stream.sinks.index_db import VideoStatus
from fiqa_stream.stream.archive import SharedModels, VideoJob, analyse_video, find_videos, fingerprint, uses_cuda

if TYPE_CHECKING:
    from conftest import VideoArchive


def test_folders_are_walked_for_videos_and_named_files_taken_as_they_are(video_archive: VideoArchive) -> None:
    folder = video_archive.folder
    files, errors = find_videos([str(folder), str(folder / "notes.txt"), str(folder / "*.mp4"), str(folder / "gone")])
    names = [f.path.relative_to(folder).as_posix() for f in files]
    assert sorted(names) == sorted([*video_archive.good, *video_archive.bad, "notes.txt"])  # each once
    assert errors == [f"{folder / 'gone'}: file not found"]


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
    result = analyse_video(job, config_data(config), SharedModels(config), threading.Event(), "test")
    assert result.outcome.status is VideoStatus.FAILED
    assert result.outcome.error is not None and "cannot open as video" in result.outcome.error


def test_cuda_is_seen_in_any_device_setting() -> None:
    assert uses_cuda({"scorer": {"type": "x", "device": "cuda:0"}})
    assert uses_cuda({"detectors": [{"device": "CUDA"}]})
    assert not uses_cuda({"scorer": {"device": "cpu"}, "name": "cuda"})
