"""Motion gating: the detector looks only where and when something moves, and still finds
every face a whole-frame pass finds, on composed still scenes and on real footage."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.yunet import YuNetDetector
from fiqa_stream.errors import ConfigError
from fiqa_stream.media.scenarios import (
    ScenarioScore,
    ScenarioTruth,
    megamind_truth,
    score_events,
    walk_in_and_stand,
    walk_through,
)
from fiqa_stream.stream.config import MotionConfig
from fiqa_stream.stream.motion import DetectionPlan, MotionDetector, MotionGate, detect_planned, plan_wave
from fiqa_stream.stream.pipeline import Pipeline, RunSummary, SourceStats
from fiqa_stream.stream.tracker import iou_matrix
from fiqa_stream.types import Frame

OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioTruth]:
    folder = tmp_path_factory.mktemp("motion")
    return {
        # A face that stands still from the first frame, and one that walks in for 1.5 s and
        # then stands still, frozen, for 3.5 s.
        "standing": walk_in_and_stand(folder / "standing.mp4", width=512, height=288, seconds=5.0, walk=1.5),
        # One person crosses an empty still scene: a face shows on about 20 % of the frames.
        "passing": walk_through(folder / "passing.mp4", width=512, height=288, seconds=8.0, people=1, crossing=1.6),
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[RunSummary, list[dict]]]:
    """Runs the whole pipeline on a file, motion gating as asked; each run once per module."""
    folder = tmp_path_factory.mktemp("runs")

    @cache
    def once(path: Path, motion: str, every: int = 1, full_batches: bool = False) -> tuple[RunSummary, list[dict]]:
        out = folder / f"{path.stem}-{motion}-{every}-{full_batches}"
        config = parse_config({
            "sources": [{"url": str(path), "id": "cam", "every": every}],
            "sinks": [{"type": "directory", "path": str(out)}],
            "motion": {"enabled": motion},
            # Waiting for the batch to fill makes every batch 8 frames, as when analysis lags the decoder.
            "pipeline": {"max_wait_ms": 1000.0 if full_batches else 0.0},
        })
        summary = Pipeline(config).run()
        events = out / "events.jsonl"
        return summary, [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []

    return once


def decoded(truth: ScenarioTruth) -> list[Frame]:
    with av.open(str(truth.path)) as container:
        return [Frame("cam", i, float(f.time), None, f.to_ndarray(format="bgr24"))
                for i, f in enumerate(container.decode(video=0))]


def found_and_in_window(score: ScenarioScore) -> tuple[set[int], set[int]]:
    """The truth faces a run's first finals show, and those whose first final lies in their best window."""
    first: dict[int, bool] = {}
    for check in score.checks:
        if check.face is not None:
            first.setdefault(check.face, check.in_window)
    return set(first), {face for face, in_window in first.items() if in_window}


def test_the_motion_detector_finds_a_walking_face_and_nothing_in_the_empty_still_scene(
    clips: dict[str, ScenarioTruth],
) -> None:
    truth = clips["passing"]
    (face,) = truth.faces
    detector = MotionDetector(MotionConfig())
    motions = [detector.observe(frame.image) for frame in decoded(truth)]
    assert motions[0].whole, "the first frame seeds the background: all of it is new"
    walking = [i for i in face.visible_frames if face.visibility[i] >= 0.99]
    for index in walking:
        x1, y1, x2, y2 = face.boxes[index]
        centre = ((x1 + x2) / 2, (y1 + y2) / 2)
        assert any(b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3] for b in motions[index].boxes.tolist()), (
            f"frame {index}: the walking face at {centre} lies in no moving region {motions[index].boxes.tolist()}"
        )
    # Before the person comes, and a few frames after the place they left is learnt again.
    empty = [i for i in range(1, truth.frame_count) if i < min(face.boxes) or i > max(face.boxes) + 5]
    assert empty
    assert [i for i in empty if len(motions[i].boxes) or motions[i].whole] == []


def test_a_whole_change_of_the_picture_is_taken_as_the_new_background(clips: dict[str, ScenarioTruth]) -> None:
    frame = decoded(clips["passing"])[0].image
    brighter = cv2.convertScaleAbs(frame, alpha=1.6)  # the lights switched on
    detector = MotionDetector(MotionConfig())
    assert detector.observe(frame).whole
    assert not detector.observe(frame).whole
    changed = detector.observe(brighter)
    assert changed.whole and len(changed.boxes) == 0
    settled = detector.observe(brighter)
    assert not settled.whole and len(settled.boxes) == 0, "the new picture is the background at once"


def test_a_still_scene_is_detected_whole_every_interval_and_skipped_in_between(
    clips: dict[str, ScenarioTruth],
) -> None:
    truth = clips["passing"]
    (face,) = truth.faces
    gate = MotionGate(MotionConfig(full_frame_interval=1.0), YuNetConfig(), enabled=True)
    before = [frame for frame in decoded(truth) if frame.index < min(face.boxes)]
    plans = [gate.plan(frame, open_tracks=0) for frame in before]
    whole = [frame.index for frame, plan in zip(before, plans, strict=True) if plan.whole]
    assert whole == [i for i in range(len(before)) if i % round(truth.fps) == 0], "one whole frame a second"
    assert all(plan.skipped for plan in plans if not plan.whole)
    ungated = MotionGate(MotionConfig(), YuNetConfig(), enabled=False)
    assert all(ungated.plan(frame, open_tracks=0).whole for frame in before[:10])


def test_a_wave_ends_before_a_gated_sources_next_frame_once_one_of_its_frames_is_detected_whole(
    clips: dict[str, ScenarioTruth],
) -> None:
    first, second = decoded(clips["standing"])[:2]
    a, b = (MotionGate(MotionConfig(), YuNetConfig(), enabled=True) for _ in range(2))
    ungated = MotionGate(MotionConfig(), YuNetConfig(), enabled=False)
    requests = [(a, first, 0), (b, first, 0), (ungated, first, 0), (ungated, second, 0), (a, second, 0), (b, second, 0)]
    plans = plan_wave(requests)
    assert [plan.whole for plan in plans] == [True, True, True, True], "an ungated source never waits"
    # The rest is planned once the first frames are tracked: within the interval, not whole.
    rest = plan_wave(requests[len(plans):])
    assert len(rest) == 2 and not any(plan.whole for plan in rest)
    # A frame detected whole anyway (most of the picture changed) needs nothing tracked: no wait.
    fresh = MotionGate(MotionConfig(), YuNetConfig(), enabled=True)
    changed = Frame(second.source, second.index, second.pts, None, np.ascontiguousarray(255 - second.image))
    assert [plan.whole for plan in plan_wave([(fresh, first, 0), (fresh, changed, 0)])] == [True, True]


def test_frames_a_little_out_of_presentation_order_are_not_a_clock_jump(clips: dict[str, ScenarioTruth]) -> None:
    # Some files hand out frames slightly out of order (Megamind.avi: every third one 42 ms
    # early); only a real jump back in time starts over with a whole frame.
    first, second, third = decoded(clips["standing"])[:3]
    gate = MotionGate(MotionConfig(), YuNetConfig(), enabled=True)
    negative = Frame(first.source, first.index, first.pts, None, np.ascontiguousarray(255 - first.image))
    assert gate.plan(negative, open_tracks=0).whole
    assert gate.plan(third, open_tracks=0).whole, "the picture changed back: whole, at the third frame's time"
    assert second.pts is not None and third.pts is not None and second.pts < third.pts
    assert not gate.needs_whole(second), "42 ms early is frame order, not a jump"
    assert not gate.plan(second, open_tracks=0).whole
    rewound = Frame(second.source, second.index, third.pts - 5.0, None, second.image)
    assert gate.needs_whole(rewound)


def test_regions_find_the_faces_where_a_whole_frame_detection_does_in_frame_pixels(tmp_path: Path) -> None:
    # 1280×720: YuNet detects whole frames at 640 wide; regions are shrunk the same way.
    truth = walk_in_and_stand(tmp_path / "hd.mp4", width=1280, height=720, seconds=1.2, walk=0.5)
    frame = decoded(truth)[-1]
    config = YuNetConfig(recycle_growth_mb=0)
    with YuNetDetector(config) as detector:
        (whole,) = detector.detect([frame.image])
        grid = 64  # corners on YuNet's 32-pixel stride at half size, as MotionGate puts them
        regions = []
        for face in truth.faces:
            x1, y1, x2, y2 = face.boxes[frame.index]
            side = max(x2 - x1, y2 - y1)
            low = np.floor(np.array([x1 - side, y1 - side]) / grid) * grid
            high = np.ceil(np.array([x2 + side, y2 + side]) / grid) * grid
            regions.append([*np.maximum(low, 0), *np.minimum(high, [1280, 720])])
        plans = [DetectionPlan(whole=False, regions=np.array(regions, np.int32)), DetectionPlan(whole=False)]
        in_regions, skipped = detect_planned(detector, config, [frame.image, frame.image], plans)
    assert len(whole) == len(truth.faces) == len(in_regions)
    assert len(skipped) == 0
    iou = iou_matrix(whole.boxes, in_regions.boxes)
    pairs = iou.argmax(axis=1)
    assert iou.max(axis=1).min() >= 0.85, f"whole {whole.boxes.tolist()} vs regions {in_regions.boxes.tolist()}"
    assert whole.landmarks is not None and in_regions.landmarks is not None
    assert np.abs(whole.landmarks - in_regions.landmarks[pairs]).max() <= 6.0, "a few pixels, as boxes"


@pytest.mark.slow
@pytest.mark.parametrize("full_batches", [False, True], ids=["frames-as-they-come", "full-batches"])
def test_gating_keeps_following_a_face_that_walks_in_and_stands_still(
    clips: dict[str, ScenarioTruth], run: Callable[..., tuple[RunSummary, list[dict]]], full_batches: bool,
) -> None:
    # In a full batch the frames after a whole frame wait until its faces are tracked
    # (motion.plan_wave); planned before, they missed the face that never moved.
    truth = clips["standing"]
    ungated_summary, ungated_events = run(truth.path, "off")
    gated_summary, gated_events = run(truth.path, "on", full_batches=full_batches)
    ungated, gated = score_events(ungated_events, truth), score_events(gated_events, truth)
    found, in_window = found_and_in_window(gated)
    assert found == found_and_in_window(ungated)[0] == {0, 1}, (
        f"the face that never moved is found too: gated {gated.checks}, ungated {ungated.checks}"
    )
    assert in_window >= found_and_in_window(ungated)[1]
    assert gated.finals == 2 and gated.identity_switches == 0, "one track per face: standing still breaks none"
    stats = gated_summary.sources[0]
    assert stats.analysed == truth.frame_count == ungated_summary.sources[0].detection_whole
    # Whole frames: the first one and one every 2 s; the faces are detected in regions between.
    assert stats.detection_whole <= 1 + truth.frame_count / (2.0 * truth.fps)
    assert stats.detection_on_regions == stats.analysed - stats.detection_whole
    assert stats.regions_detected >= stats.detection_on_regions


@pytest.mark.slow
def test_gating_skips_most_frames_of_a_mostly_still_clip_and_finds_the_same_faces(
    clips: dict[str, ScenarioTruth], run: Callable[..., tuple[RunSummary, list[dict]]],
) -> None:
    truth = clips["passing"]
    ungated_summary, ungated_events = run(truth.path, "off")
    gated_summary, gated_events = run(truth.path, "on")
    ungated, gated = score_events(ungated_events, truth), score_events(gated_events, truth)
    assert found_and_in_window(gated)[0] == found_and_in_window(ungated)[0] == {0}
    assert found_and_in_window(gated)[1] >= found_and_in_window(ungated)[1]
    stats = gated_summary.sources[0]
    assert stats.analysed == truth.frame_count
    assert stats.detection_skipped >= 0.6 * stats.analysed, f"skipped {stats.detection_skipped} of {stats.analysed}"
    assert stats.detection_whole + stats.detection_on_regions + stats.detection_skipped == stats.analysed
    assert stats.faces > 0 and ungated_summary.sources[0].detection_skipped == 0


@pytest.mark.slow
def test_on_a_film_of_close_ups_and_cuts_gating_detects_whole_frames_and_gives_the_same_best_shots(
    run: Callable[..., tuple[RunSummary, list[dict]]],
) -> None:
    path = OPENCV_DOC_DATA / "Megamind.avi"
    if not path.exists():
        pytest.skip(f"{path} is missing (Debian package opencv-doc)")
    truth = megamind_truth(path)
    ungated_summary, ungated_events = run(path, "off", 3)
    gated_summary, gated_events = run(path, "on", 3)

    def shots(events: list[dict]) -> list[tuple[int, int]]:
        """(shot of the track's first sighting, shot of its best shot) of every final."""
        return sorted((truth.scene_of(e["first_frame_index"]), truth.scene_of(e["frame_index"]))
                      for e in events if e["kind"] == "final")

    assert shots(gated_events) == shots(ungated_events) != []
    stats = gated_summary.sources[0]
    assert stats.analysed == ungated_summary.sources[0].analysed
    # Close-ups and a moving camera: the regions would cover most of each frame.
    assert stats.detection_whole >= 0.9 * stats.analysed


@pytest.mark.parametrize(("motion", "expected"), [
    ({"enabled": "yes"}, "motion.enabled: Input should be 'auto', 'on' or 'off'"),
    ({"treshold": 30}, "motion.treshold: unknown key (did you mean 'threshold'?)"),
    ({"threshold": 0}, "motion.threshold: Input should be greater than or equal to 1"),
    ({"full_frame_interval": 0}, "motion.full_frame_interval: Input should be greater than 0"),
])
def test_a_bad_motion_setting_is_a_config_error_that_names_the_key(motion: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(f"config: {expected}")):
        parse_config({"sources": [{"url": "a.mp4"}], "sinks": [{"type": "directory", "path": "out"}],
                      "motion": motion})


def test_by_default_live_cameras_are_gated_and_files_are_not(
    clips: dict[str, ScenarioTruth], run: Callable[..., tuple[RunSummary, list[dict]]],
    rtsp_servers: Callable[..., Any], tmp_path: Path,
) -> None:
    truth = clips["passing"]
    file_stats = run(truth.path, "auto", 5)[0].sources[0]
    assert file_stats.detection_whole == file_stats.analysed == truth.frame_count // 5
    camera = rtsp_servers([truth.path])
    config = parse_config({"sources": [{"url": camera.url(), "id": "cam"}],
                           "sinks": [{"type": "directory", "path": str(tmp_path)}]})
    stop = threading.Event()
    latest: list[SourceStats] = []

    def progress(sources: list[SourceStats]) -> None:
        latest[:] = sources
        if sources[0].analysed >= 100:
            stop.set()

    runner = threading.Thread(target=lambda: Pipeline(config, on_progress=progress, progress_interval=0.05).run(stop))
    runner.start()
    runner.join(60)
    stop.set()
    runner.join(10)
    (stats,) = latest
    assert stats.analysed >= 100
    assert stats.detection_skipped > 0.5 * stats.analysed, "the empty still scene is not detected on every frame"
    assert stats.detection_whole >= 1
