"""Scene cuts: the frames of edited video that start another shot, and nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.stream.config import TrackerConfig
from fiqa_stream.stream.pipeline import Pipeline, RunSummary
from fiqa_stream.stream.shot_boundary import ShotBoundaryDetector, cell_change

# The frames of Debian opencv-doc's Megamind.avi (270 frames, 720×528) that open a new shot.
MEGAMIND_CUTS = [98, 154, 200]
THRESHOLD = TrackerConfig().scene_cut_threshold


@pytest.fixture(scope="module")
def megamind(opencv_doc_frames: Callable[[str], list[np.ndarray]]) -> list[np.ndarray]:
    return opencv_doc_frames("Megamind.avi")


def cuts(frames: list[np.ndarray], threshold: float = THRESHOLD, every: int = 1) -> list[int]:
    detector = ShotBoundaryDetector(threshold)
    return [index for index in range(0, len(frames), every) if detector.is_cut(frames[index])]


def test_the_three_cuts_of_megamind_are_cuts_and_no_other_frame_is(megamind: list[np.ndarray]) -> None:
    assert len(megamind) == 270
    assert cuts(megamind) == MEGAMIND_CUTS


def test_decode_garbage_across_part_of_the_picture_is_not_a_cut(
    opencv_doc_frames: Callable[[str], list[np.ndarray]],
) -> None:
    # Megamind_bugy.avi is the same clip with bars of decode garbage on 15 frames.
    assert cuts(opencv_doc_frames("Megamind_bugy.avi")) == MEGAMIND_CUTS


def test_a_cut_is_found_when_only_every_fifth_frame_is_analysed(megamind: list[np.ndarray]) -> None:
    # The analysed frame after each cut: 100, 155 and 200; five frames of motion are no cut.
    assert cuts(megamind, every=5) == [100, 155, 200]


def test_the_first_frame_is_never_a_cut(megamind: list[np.ndarray]) -> None:
    detector = ShotBoundaryDetector(THRESHOLD)
    assert not detector.is_cut(megamind[154])  # the first frame of a shot, but nothing came before it
    assert detector.is_cut(megamind[0])  # compared with frame 154: another shot


def test_threshold_zero_turns_detection_off(megamind: list[np.ndarray]) -> None:
    assert cuts(megamind, threshold=0.0) == []


def test_a_higher_threshold_finds_fewer_cuts(megamind: list[np.ndarray]) -> None:
    # Each cut changes the median cell by 0.13-0.15 (the threshold is 0.1): at 0.5 none is one.
    assert cuts(megamind, threshold=0.5) == []


def test_a_bar_over_a_third_of_the_picture_changes_the_median_cell_little(megamind: list[np.ndarray]) -> None:
    frame = megamind[50]
    barred = frame.copy()
    barred[: frame.shape[0] // 3] = (0, 135, 0)  # FFmpeg's green over the top two of six cell rows
    detector = ShotBoundaryDetector(THRESHOLD)
    detector.is_cut(frame)
    assert not detector.is_cut(barred)
    # ... while the same bar over the whole picture is one.
    detector = ShotBoundaryDetector(THRESHOLD)
    detector.is_cut(frame)
    assert detector.is_cut(np.full_like(frame, (0, 135, 0)))


def test_cell_change_is_zero_for_equal_thumbnails_and_one_for_black_to_white() -> None:
    black = np.zeros((48, 64), np.float32)
    white = np.ones((48, 64), np.float32)
    assert cell_change(black, black) == 0.0
    assert cell_change(black, white) == pytest.approx(1.0)
    third = black.copy()
    third[:16] = 1.0  # two of six cell rows change: the median cell does not
    assert cell_change(black, third) == 0.0


@pytest.fixture(scope="module")
def around_the_cut(megamind: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Megamind.avi's frames 190-209 as H.264: the cut at 200 is its frame 10."""
    path = tmp_path_factory.mktemp("cut") / "megamind-190.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 720, 528, "yuv420p"
        for image in megamind[190:210]:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def run_pipeline(clip: Path, out: Path, threshold: float) -> tuple[RunSummary, Pipeline, list[tuple[int, float]]]:
    """A run with appearance off (the cut detector alone ends tracks), and per final event the
    frame its track began at and the media time it was last seen."""
    config = parse_config({
        "sources": [{"url": str(clip), "id": "mm"}], "sinks": [{"type": "directory", "path": str(out)}],
        "scorer": {"type": "heuristic"},
        "tracker": {"scene_cut_threshold": threshold, "appearance_min_similarity": 0.0},
    })
    pipeline = Pipeline(config)
    summary = pipeline.run()
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    spans = [(e["first_frame_index"], e["last_seen"]) for e in events if e["kind"] == "final"]
    return summary, pipeline, spans


def test_the_pipeline_counts_the_cut_and_no_track_spans_it(around_the_cut: Path, tmp_path: Path) -> None:
    summary, pipeline, spans = run_pipeline(around_the_cut, tmp_path / "out", THRESHOLD)
    assert summary.ok and summary.sources[0].analysed == 20
    assert summary.sources[0].scene_cuts == 1
    assert pipeline.metrics.registry.get_sample_value("fiqa_scene_cuts_total", {"source": "mm"}) == 1
    before = [span for span in spans if span[0] < 10]
    after = [span for span in spans if span[0] >= 10]
    assert before and after  # a face before the cut and one after it
    assert all(last_seen < 10 / 25 for _, last_seen in before), spans


def test_without_cut_detection_a_track_runs_on_across_the_cut(around_the_cut: Path, tmp_path: Path) -> None:
    # The specification above can fail: by motion alone the face after the cut continues the track.
    summary, pipeline, spans = run_pipeline(around_the_cut, tmp_path / "out", 0.0)
    assert summary.sources[0].scene_cuts == 0
    assert not pipeline.metrics.registry.get_sample_value("fiqa_scene_cuts_total", {"source": "mm"})
    assert any(first < 10 and last_seen >= 10 / 25 for first, last_seen in spans), spans
