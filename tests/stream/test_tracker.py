"""ByteTracker: ids follow faces through motion, crossings, occlusions and low confidence."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from fiqa_stream.media.faces import face_photos
from fiqa_stream.stream.config import TrackerConfig
from fiqa_stream.stream.tracker import ByteTracker, TrackerStep, iou_matrix
from fiqa_stream.types import Detections, TrackState

SIZE = 60.0


def box_at(x: float, y: float, size: float = SIZE) -> list[float]:
    return [x, y, x + size, y + size]


def dets(boxes: Sequence[Sequence[float]], scores: Sequence[float] | None = None) -> Detections:
    return Detections(
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        scores=np.array([0.9] * len(boxes) if scores is None else scores, np.float32),
        landmarks=None,
    )


def ids_of(step: TrackerStep) -> dict[int, int]:
    """Detection index -> track id."""
    return {a.detection: a.track_id for a in step.assigned}


def run_single(
    tracker: ByteTracker, xs: Sequence[float | None], score: float = 0.9
) -> list[TrackerStep]:
    """One face at (x, 100) per frame; None is a frame without it."""
    return [
        tracker.update(dets([] if x is None else [box_at(x, 100)], [] if x is None else [score]))
        for x in xs
    ]


def test_a_face_moving_steadily_keeps_one_id_for_100_frames() -> None:
    tracker = ByteTracker(TrackerConfig())
    steps = run_single(tracker, [50 + 4 * i for i in range(100)])
    assert {a.track_id for s in steps for a in s.assigned} == {1}
    assert all(len(s.assigned) == 1 and not s.ended for s in steps)
    assert [s.assigned[0].state for s in steps[:3]] == [
        TrackState.TENTATIVE, TrackState.TENTATIVE, TrackState.CONFIRMED
    ]
    assert tracker.open_tracks == 1


def test_two_faces_crossing_paths_keep_their_ids() -> None:
    tracker = ByteTracker(TrackerConfig())
    rng = np.random.default_rng(0)
    seen: dict[str, set[int]] = {"left": set(), "right": set()}
    for i in range(80):
        faces = {"left": box_at(100 + 6 * i, 100), "right": box_at(580 - 6 * i, 104)}
        order = list(faces) if rng.random() < 0.5 else list(reversed(faces))
        step = tracker.update(dets([faces[name] for name in order]))
        for index, track_id in ids_of(step).items():
            seen[order[index]].add(track_id)
    # Frame 40 puts them 0 px apart horizontally: they passed fully through each other.
    assert seen == {"left": {1}, "right": {2}} or seen == {"left": {2}, "right": {1}}


def test_an_occlusion_shorter_than_lost_frames_resumes_the_same_id() -> None:
    tracker = ByteTracker(TrackerConfig(lost_frames=30))
    xs: list[float | None] = [50 + 5 * i for i in range(20)]
    xs += [None] * 10
    xs += [50 + 5 * i for i in range(30, 50)]
    steps = run_single(tracker, xs)
    assert {a.track_id for s in steps for a in s.assigned} == {1}
    assert not any(s.ended for s in steps)
    assert steps[30].assigned[0].state is TrackState.CONFIRMED


@pytest.mark.parametrize(("gap", "resumes"), [(5, True), (6, False)])
def test_a_lost_track_survives_exactly_lost_frames_missed_frames(gap: int, resumes: bool) -> None:
    tracker = ByteTracker(TrackerConfig(lost_frames=5))
    steps = run_single(tracker, [100.0] * 5 + [None] * gap + [100.0])
    assert (steps[-1].assigned[0].track_id == 1) is resumes


def test_an_occlusion_longer_than_lost_frames_gives_a_new_id_and_ends_the_old_once() -> None:
    tracker = ByteTracker(TrackerConfig(lost_frames=5))
    xs: list[float | None] = [50 + 5 * i for i in range(10)]
    xs += [None] * 10
    xs += [50 + 5 * i for i in range(20, 30)]
    steps = run_single(tracker, xs)
    ended = [track_id for s in steps for track_id in s.ended]
    assert ended == [1]
    assert steps[10 + 5].ended == [1]  # the sixth missed frame is one more than lost_frames
    assert {a.track_id for s in steps[20:] for a in s.assigned} == {2}
    assert tracker.open_tracks == 1


def test_a_low_confidence_detection_keeps_a_confirmed_track_alive() -> None:
    tracker = ByteTracker(TrackerConfig(lost_frames=5))
    run_single(tracker, [100 + 2 * i for i in range(5)])
    steps = run_single(tracker, [110 + 2 * i for i in range(20)], score=0.3)
    assert all(ids_of(s) == {0: 1} for s in steps)
    assert all(s.assigned[0].state is TrackState.CONFIRMED and not s.ended for s in steps)


def test_a_low_confidence_detection_never_starts_a_track() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    steps = run_single(tracker, [100.0] * 10, score=0.3)
    assert all(not s.assigned for s in steps)
    assert tracker.open_tracks == 0


def test_a_detection_below_low_confidence_is_ignored() -> None:
    tracker = ByteTracker(TrackerConfig(lost_frames=2))
    run_single(tracker, [100.0] * 5)
    steps = run_single(tracker, [100.0] * 3, score=0.05)
    assert all(not s.assigned for s in steps)
    assert steps[-1].ended == [1]


def test_a_low_confidence_detection_does_not_rescue_a_tentative_track() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    run_single(tracker, [100.0])
    step = tracker.update(dets([box_at(100, 100)], [0.3]))
    assert step.assigned == [] and step.ended == [1]


def test_a_tentative_track_that_misses_once_ends_and_is_never_confirmed() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    steps = run_single(tracker, [100.0, 102.0, None, 104.0])
    assert [a.state for s in steps[:2] for a in s.assigned] == [TrackState.TENTATIVE] * 2
    assert steps[2].ended == [1]
    assert ids_of(steps[3]) == {0: 2}
    assert steps[3].assigned[0].state is TrackState.TENTATIVE


def test_with_min_hits_one_a_track_is_confirmed_at_birth() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    step = tracker.update(dets([box_at(100, 100)]))
    assert [(a.track_id, a.state) for a in step.assigned] == [(1, TrackState.CONFIRMED)]


def test_new_tracks_need_new_track_confidence() -> None:
    tracker = ByteTracker(TrackerConfig(high_confidence=0.5, new_track_confidence=0.8))
    step = tracker.update(dets([box_at(0, 0), box_at(200, 0)], [0.6, 0.85]))
    assert ids_of(step) == {1: 1}


def test_a_lost_track_that_matches_again_is_confirmed_with_its_id() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=2))
    steps = run_single(tracker, [100.0, 100.0, None, None, 100.0])
    assert steps[-1].assigned[0].track_id == 1
    assert steps[-1].assigned[0].state is TrackState.CONFIRMED


def test_every_detection_is_assigned_at_most_once() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    boxes = [box_at(100, 100), box_at(102, 100), box_at(104, 101), box_at(300, 100)]
    scores = [0.9, 0.4, 0.95, 0.2]
    for _ in range(10):
        step = tracker.update(dets(boxes, scores))
        detections = [a.detection for a in step.assigned]
        track_ids = [a.track_id for a in step.assigned]
        assert len(detections) == len(set(detections))
        assert len(track_ids) == len(set(track_ids))
        assert detections == sorted(detections)


def test_tracker_instances_number_ids_independently() -> None:
    first, second = ByteTracker(TrackerConfig()), ByteTracker(TrackerConfig())
    first.update(dets([box_at(0, 0), box_at(200, 0)]))
    assert ids_of(second.update(dets([box_at(0, 0)]))) == {0: 1}
    first.update(dets([box_at(0, 0), box_at(200, 0)]))
    second.reset()
    assert first.open_tracks == 2
    step = first.update(dets([box_at(0, 0), box_at(200, 0), box_at(400, 0)]))
    assert ids_of(step) == {0: 1, 1: 2, 2: 3}
    assert ids_of(second.update(dets([box_at(400, 0)]))) == {0: 1}


def test_reset_drops_tracks_and_restarts_ids() -> None:
    tracker = ByteTracker(TrackerConfig())
    run_single(tracker, [100.0] * 5)
    tracker.reset()
    assert tracker.open_tracks == 0
    step = tracker.update(dets([box_at(400, 0)]))
    assert ids_of(step) == {0: 1} and step.ended == []


def test_finish_ends_every_open_track_and_leaves_the_tracker_empty() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=2, lost_frames=10))
    tracker.update(dets([box_at(0, 0), box_at(200, 0)]))
    tracker.update(dets([box_at(0, 0), box_at(200, 0)]))
    tracker.update(dets([box_at(0, 0), box_at(400, 0)]))  # 2 turns lost, 3 is born tentative
    assert tracker.open_tracks == 3
    assert sorted(tracker.finish()) == [1, 2, 3]
    assert tracker.open_tracks == 0
    assert tracker.finish() == []
    step = tracker.update(Detections.empty())
    assert step.assigned == [] and step.ended == []


@pytest.mark.parametrize("with_landmarks", [True, False])
def test_empty_detections_work(with_landmarks: bool) -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1, lost_frames=1))
    assert tracker.update(Detections.empty(with_landmarks)) == TrackerStep([], [])
    tracker.update(dets([box_at(0, 0)]))
    assert tracker.update(Detections.empty(with_landmarks)).ended == []
    assert tracker.update(Detections.empty(with_landmarks)).ended == [1]


def test_degenerate_boxes_do_not_break_the_tracker() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    for _ in range(3):
        step = tracker.update(dets([[10, 10, 10, 10], [50, 50, 80, 50]]))
        assert len(step.assigned) <= 2


def test_iou_matrix() -> None:
    a = np.array([box_at(0, 0, 10)], np.float32)
    b = np.array([box_at(0, 0, 10), box_at(5, 0, 10), box_at(20, 20, 10)], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix(a, np.zeros((0, 4), np.float32)).shape == (1, 0)


# Appearance: the tracker is given the frame, and real faces are in it.

A, B = 0, 6  # two of face_photos() whose face boxes correlate 0.15


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """The face boxes (each photo's middle half) of the real face photos, SIZE × SIZE."""
    side = int(SIZE)
    return [
        cv2.resize(p[p.shape[0] // 4 : 3 * p.shape[0] // 4, p.shape[1] // 4 : 3 * p.shape[1] // 4], (side, side),
                   interpolation=cv2.INTER_AREA)
        for p in face_photos()
    ]


def scene(faces: list[np.ndarray], placed: Sequence[tuple[int, int, int]]) -> tuple[Detections, np.ndarray]:
    """Faces pasted on a plain 640×360 frame, at (face, x, y), and their boxes as detections."""
    image = np.full((360, 640, 3), 110, np.uint8)
    side = int(SIZE)
    for face, x, y in placed:
        image[y : y + side, x : x + side] = faces[face]
    return dets([box_at(x, y) for _, x, y in placed]), image


def track_scenes(
    tracker: ByteTracker, faces: list[np.ndarray], frames: Sequence[Sequence[tuple[int, int, int]]]
) -> list[dict[int, int]]:
    """Per frame, face number -> track id."""
    out = []
    for placed in frames:
        step = tracker.update(*scene(faces, placed))
        out.append({placed[a.detection][0]: a.track_id for a in step.assigned})
    return out


@pytest.mark.parametrize("config", [TrackerConfig(), TrackerConfig(appearance_min_similarity=0.0)],
                         ids=["appearance", "motion-only"])
def test_a_different_face_that_takes_the_tracked_ones_place_gets_a_new_id(
    faces: list[np.ndarray], config: TrackerConfig
) -> None:
    tracker = ByteTracker(config)
    ids = track_scenes(tracker, faces, [[(A, 200, 100)]] * 5 + [[(B, 202, 100)]] * 3)
    assert ids[:5] == [{A: 1}] * 5
    if config.appearance_min_similarity > 0:
        assert ids[5] == {B: 2}  # refused: IoU 0.94, but it looks like someone else
    else:
        assert ids[5:] == [{B: 1}] * 3  # by motion alone it continues the old track


@pytest.mark.parametrize("similarity", [0.5, 0.0], ids=["appearance", "motion-only"])
def test_two_faces_that_swap_places_within_the_iou_gate_keep_their_ids(
    faces: list[np.ndarray], similarity: float
) -> None:
    # 54 px apart the boxes overlap by IoU 0.05 (match_iou here) and the faces barely
    # hide each other: each track is allowed either face, and only appearance can choose.
    config = TrackerConfig(match_iou=0.05, appearance_min_similarity=similarity)
    before = [(A, 200, 100), (B, 254, 100)]
    after = [(A, 254, 100), (B, 200, 100)]
    ids = track_scenes(ByteTracker(config), faces, [before] * 5 + [after] * 3)
    assert ids[4] == {A: 1, B: 2}
    if similarity > 0:
        assert ids[5:] == [{A: 1, B: 2}] * 3
    else:
        assert ids[5:] == [{A: 2, B: 1}] * 3  # motion alone swaps them: the boxes stayed put


def test_two_faces_that_swap_places_far_apart_keep_their_ids_by_appearance(faces: list[np.ndarray]) -> None:
    # 100 px apart (IoU 0): no track matches by motion in the swap frame; each confirmed
    # track then finds its own face by appearance within reid_max_distance, in that frame.
    tracker = ByteTracker(TrackerConfig())
    before = [(A, 200, 100), (B, 300, 100)]
    after = [(A, 300, 100), (B, 200, 100)]
    steps = []
    for placed in [before] * 5 + [after] * 3:
        steps.append(tracker.update(*scene(faces, placed)))
    assert ids_of(steps[4]) == {0: 1, 1: 2}
    assert all(ids_of(step) == {0: 1, 1: 2} for step in steps[5:])
    assert not any(step.ended for step in steps)


@pytest.mark.parametrize(("shift", "resumes"), [(90, True), (110, True), (130, False)])
def test_a_lost_face_that_reappears_away_from_its_gate_resumes_within_reid_max_distance(
    faces: list[np.ndarray], shift: int, resumes: bool
) -> None:
    # Box width 60, reid_max_distance 2: a centre up to 120 px from the predicted one resumes.
    tracker = ByteTracker(TrackerConfig())
    frames = [[(A, 200, 100)]] * 5 + [[]] * 3 + [[(A, 200 + shift, 100)]]
    ids = track_scenes(tracker, faces, frames)
    assert iou_matrix(np.array([box_at(200, 100)]), np.array([box_at(200 + shift, 100)]))[0, 0] == 0
    assert ids[-1] == ({A: 1} if resumes else {A: 2})


def test_a_different_face_where_a_lost_one_was_does_not_resume_it(faces: list[np.ndarray]) -> None:
    tracker = ByteTracker(TrackerConfig())
    ids = track_scenes(tracker, faces, [[(A, 200, 100)]] * 5 + [[]] * 3 + [[(B, 290, 100)]])
    assert ids[-1] == {B: 2}


def test_with_appearance_off_a_lost_face_away_from_its_gate_starts_a_new_track(faces: list[np.ndarray]) -> None:
    tracker = ByteTracker(TrackerConfig(appearance_min_similarity=0.0))
    ids = track_scenes(tracker, faces, [[(A, 200, 100)]] * 5 + [[]] * 3 + [[(A, 290, 100)]])
    assert ids[-1] == {A: 2}


def test_with_appearance_off_the_frame_changes_nothing(faces: list[np.ndarray]) -> None:
    # The same detections with and without the image: identical steps, crossing faces included.
    with_image, without = ByteTracker(TrackerConfig(appearance_min_similarity=0.0)), ByteTracker(TrackerConfig(
        appearance_min_similarity=0.0))
    for i in range(40):
        placed = [(A, 100 + 6 * i, 100), (B, 340 - 6 * i, 104)]
        found, image = scene(faces, placed)
        assert with_image.update(found, image) == without.update(found)


def test_a_detection_that_cannot_be_measured_does_not_resume_a_lost_track(faces: list[np.ndarray]) -> None:
    tracker = ByteTracker(TrackerConfig())
    ids = track_scenes(tracker, faces, [[(A, 200, 100)]] * 5 + [[]] * 3)
    # A confident box over plain background 90 px from where the face was lost: IoU 0, no look.
    _, image = scene(faces, [])
    step = tracker.update(dets([box_at(290, 100)]), image)
    assert ids[4] == {A: 1}
    assert ids_of(step) != {0: 1}


@pytest.mark.parametrize("min_hits", [3, 1])
def test_a_face_that_jumps_past_its_iou_gate_keeps_its_id_from_the_next_frame(
    faces: list[np.ndarray], min_hits: int
) -> None:
    # 90 px in one frame (a dropped stretch of frames, a camera jolt): IoU 0, 1.5 box widths.
    tracker = ByteTracker(TrackerConfig(min_hits=min_hits))
    ids = track_scenes(tracker, faces, [[(A, 200, 100)]] * 5 + [[(A, 290, 100)]] * 4)
    assert ids[4] == {A: 1}
    assert ids[6:] == [{A: 1}] * 3


@pytest.mark.parametrize(("config", "tracks"),
                         [(TrackerConfig(), 1), (TrackerConfig(appearance_min_similarity=0.0), 8)],
                         ids=["appearance", "motion-only"])
def test_a_face_sampled_at_a_few_frames_a_second_walks_into_one_confirmed_track(
    faces: list[np.ndarray], config: TrackerConfig, tracks: int
) -> None:
    # 5 analysed frames/s of a face walking 250 px/s: 50 px (0.8 box widths, IoU 0.09)
    # between analysed frames from its first sighting, before any velocity is known.
    tracker = ByteTracker(config)
    steps = [tracker.update(*scene(faces, [(A, 40 + 50 * i, 100)])) for i in range(8)]
    assert len({a.track_id for step in steps for a in step.assigned}) == tracks
    if tracks == 1:
        assert [a.state for a in steps[-1].assigned] == [TrackState.CONFIRMED]


def test_a_different_face_beside_a_new_track_does_not_continue_it(faces: list[np.ndarray]) -> None:
    tracker = ByteTracker(TrackerConfig())
    ids = track_scenes(tracker, faces, [[(A, 100, 100)], [(B, 150, 100)], [(B, 200, 100)]])
    assert ids[0] == {A: 1} and ids[1] == {B: 2} and ids[2] == {B: 2}
