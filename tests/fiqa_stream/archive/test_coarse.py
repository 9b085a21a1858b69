"""Coarse-to-fine indexing: a first pass over a few frames finds where faces are, the
pipeline analyses only there, and the index holds what a whole pass would have put in it."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fiqa_stream.archive.analysis import VideoJob, VideoResult, analyse_video, fingerprint
from fiqa_stream.archive.coarse import face_spans
from fiqa_stream.archive.commands import _index_config
from fiqa_stream.archive.database import VideoStatus
from fiqa_stream.config import Config, parse_config
from fiqa_stream.media.clips import ClipTruth
from fiqa_stream.media.scenarios import walk_in_and_stand
from fiqa_stream.media.surveillance import compose_surveillance_clip
from fiqa_stream.models import Models, build_models
from fiqa_stream.stream.file_source import scan_timeline

VISITS = [(4.0, 3.0), (16.0, 3.0)]


@pytest.fixture(scope="module")
def sparse_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipTruth:
    """24 s of a fixed camera at 320×240, 15 fps: two people show their face for 3 s each,
    someone seen from behind crosses in between; faces are on screen a quarter of the time."""
    return compose_surveillance_clip(tmp_path_factory.mktemp("coarse") / "hall.mp4", width=320, height=240,
                                     fps=15.0, seconds=24.0, visits=VISITS, passers=[(9.5, 3.0)], seed=5)


@pytest.fixture(scope="module")
def models() -> Iterator[Models]:
    config = config_with()
    with build_models(config.detector, config.scorer, "cpu") as built:
        yield built


def config_with(**index: Any) -> Config:
    return parse_config({"sources": [{"url": "-"}], "sinks": [{"type": "directory", "path": "-"}],
                         "scorer": {"type": "heuristic"}, "index": index})


def analyse(path: Path, models: Models, **index: Any) -> VideoResult:
    job = VideoJob(fingerprint(path), str(path), path.stat().st_size)
    return analyse_video(job, config_with(**index), models, threading.Event(), "test")


def shots(result: VideoResult) -> list[tuple[int, float | None, tuple[float, ...], float]]:
    return [(s.frame_index, s.time, tuple(s.box), s.quality) for s in result.outcome.shots]


@pytest.fixture(scope="module")
def whole(sparse_clip: ClipTruth, models: Models) -> VideoResult:
    return analyse(sparse_clip.path, models, coarse=False)


@pytest.mark.parametrize("key_frame_gap", [1.0, 0.0], ids=["key-frames", "2-per-second"])
def test_coarse_to_fine_gives_the_best_shots_of_a_whole_pass(
    sparse_clip: ClipTruth, models: Models, whole: VideoResult, key_frame_gap: float
) -> None:
    result = analyse(sparse_clip.path, models, min_seconds=0, key_frame_gap=key_frame_gap)
    assert [p.name for p in result.passes] == ["coarse", "fine"]
    assert result.outcome.status is VideoStatus.DONE and whole.outcome.status is VideoStatus.DONE
    # The same frames, at the same index and time, the same boxes and qualities.
    assert shots(result) == shots(whole)
    # One best shot per face, at its best moment (within 3 frames: the weight-free scorer).
    frames = sorted(s.frame_index for s in result.outcome.shots)
    assert len(frames) == len(sparse_clip.faces)
    for frame, face in zip(frames, sparse_clip.faces, strict=True):
        assert face.best_frames[0] - 3 <= frame <= face.best_frames[1] + 3


def test_a_face_that_walks_in_and_stands_still_keeps_its_best_shot(tmp_path: Path, models: Models) -> None:
    # A still scene: one person stands from the first frame, another walks in and freezes.
    # Once nothing moves, the coarse pass still detects: a face was there the sample before.
    scene = walk_in_and_stand(tmp_path / "stand.mp4", width=320, height=180, fps=25.0, seconds=12.0, walk=1.5)
    whole = analyse(scene.path, models, coarse=False)
    result = analyse(scene.path, models, min_seconds=0)
    assert [p.name for p in result.passes] == ["coarse", "fine"]
    assert shots(result) == shots(whole) and len(shots(whole)) == len(scene.faces)


def test_only_the_stretches_around_faces_are_decoded(sparse_clip: ClipTruth, models: Models) -> None:
    result = analyse(sparse_clip.path, models, min_seconds=0)
    coarse, fine = result.passes
    timeline = scan_timeline(sparse_clip.path)
    assert timeline is not None
    # Key frames come about every second: the coarse pass decodes those and nothing else,
    # and detects only those where something moved or a face was just seen.
    assert coarse.decoded == len(timeline.spread_keys(1.25)) <= len(timeline.keys)
    assert coarse.analysed < 0.7 * coarse.decoded
    # The fine pass decodes the two visits with their margins, not the empty hall between them.
    assert fine.analysed < 0.7 * sparse_clip.frame_count
    assert fine.decoded <= fine.analysed + 2 * 15  # at most a key frame interval of lead-in per stretch
    assert result.outcome.frames_decoded == coarse.decoded + fine.decoded


def test_a_video_without_faces_costs_only_the_coarse_pass(tmp_path: Path, models: Models) -> None:
    empty = compose_surveillance_clip(tmp_path / "night.mp4", width=320, height=240, fps=15.0, seconds=32.0,
                                      visits=[], passers=[(6.0, 3.0), (20.0, 3.0)], seed=8)
    result = analyse(empty.path, models)  # 32 s: at least min_seconds
    timeline = scan_timeline(empty.path)
    assert timeline is not None
    assert [p.name for p in result.passes] == ["coarse"]
    assert result.outcome.status is VideoStatus.DONE and result.outcome.shots == ()
    assert result.outcome.frames_decoded == len(timeline.keys) < empty.frame_count / 10


def test_videos_shorter_than_min_seconds_are_analysed_whole(sparse_clip: ClipTruth, models: Models,
                                                             whole: VideoResult) -> None:
    result = analyse(sparse_clip.path, models)  # 24 s, below the default 30
    assert [p.name for p in result.passes] == ["full"]
    assert [p.name for p in whole.passes] == ["full"]
    assert result.outcome.frames_decoded == sparse_clip.frame_count


def test_a_face_seen_once_spans_the_gaps_to_the_neighbouring_samples_widened() -> None:
    samples = [(0.0, False), (1.0, False), (2.0, True), (3.0, False), (4.0, False)]
    assert face_spans(samples, end=4.0, widen=0.25, join=0.0) == [(0.75, 3.25)]


def test_stretches_closer_than_a_lost_track_lives_join_and_all_stay_in_the_video() -> None:
    samples = [(float(t), t in (1, 8, 10)) for t in range(11)]
    # Faces at 1 s and 8 s: 0-2.5 and 6.5-9.5, 4 s apart; at 10 s, the end: 8.5-10.
    assert face_spans(samples, end=10.0, widen=0.5, join=3.9) == [(0.0, 2.5), (6.5, 10.0)]
    assert face_spans(samples, end=10.0, widen=0.5, join=4.0) == [(0.0, 10.0)]


def test_no_coarse_on_the_command_line_analyses_every_video_whole(tmp_path: Path) -> None:
    def args(coarse: bool | None) -> argparse.Namespace:
        return argparse.Namespace(config=None, out=tmp_path, workers=None, coarse=coarse)

    assert _index_config(args(None)).index.coarse is True  # the default
    assert _index_config(args(False)).index.coarse is False
