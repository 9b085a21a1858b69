"""Best-shot selection: one final event per track with its best sighting; the policies."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from fiqa_stream.media.faces import face_photos
from fiqa_stream.stream import integrity
from fiqa_stream.stream.config import CropConfig, SelectionConfig
from fiqa_stream.stream.selection import BestShotSelector, new_run_id
from fiqa_stream.types import EventKind, Frame, Quality

BOX = np.array([40, 30, 80, 80], np.float32)


def frame(index: int, fps: float = 25.0) -> Frame:
    image = np.full((120, 160, 3), index % 256, np.uint8)
    return Frame("cam", index, index / fps, None, image)


def selector(**selection: object) -> BestShotSelector:
    return BestShotSelector("cam", SelectionConfig(**selection), CropConfig(), "test-model-1", run_id="r1")


def feed(chosen: BestShotSelector, scores: list[float], track_id: int = 1) -> list:
    events = []
    for index, score in enumerate(scores):
        events += chosen.observe(track_id, frame(index), BOX, None, Quality(score, {"sharpness": score}))
    return events


def test_on_end_emits_one_final_event_with_the_best_sighting() -> None:
    chosen = selector()
    assert feed(chosen, [0.2, 0.5, 0.9, 0.4, 0.3]) == []
    [event] = chosen.end(1)
    assert event.kind is EventKind.FINAL
    assert event.event_id == "cam:r1:1:0" and event.run_id == "r1"
    assert event.frame_index == 2
    assert event.quality == pytest.approx(0.9)
    assert event.components == {"sharpness": pytest.approx(0.9)}
    assert event.first_seen == 0.0 and event.last_seen == pytest.approx(4 / 25)
    assert event.sightings == 5
    assert event.model == "test-model-1"
    assert event.box == (40.0, 30.0, 80.0, 80.0)
    assert event.first_frame_index == 0 and event.first_box == (40.0, 30.0, 80.0, 80.0)


def test_the_crop_is_a_jpeg_of_the_best_frame() -> None:
    chosen = selector()
    feed(chosen, [0.1, 0.1, 0.8, 0.1])
    [event] = chosen.end(1)
    crop = cv2.imdecode(np.frombuffer(event.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None and crop.ndim == 3
    assert abs(float(crop.mean()) - 2) < 3  # frame 2 was filled with the value 2


def test_a_track_shorter_than_the_minimum_emits_nothing() -> None:
    chosen = selector(min_track_length=3)
    feed(chosen, [0.9, 0.9])
    assert chosen.end(1) == []


def test_ending_an_unknown_track_emits_nothing() -> None:
    assert selector().end(42) == []


def test_ties_keep_the_earliest_sighting() -> None:
    chosen = selector()
    feed(chosen, [0.5, 0.7, 0.7, 0.7])
    assert chosen.end(1)[0].frame_index == 1


def test_periodic_emits_updates_at_most_every_period_and_only_on_improvement() -> None:
    chosen = selector(policy="periodic", period=1.0, min_track_length=1)
    scores = [0.1 + 0.01 * i for i in range(75)]  # improves on every frame, 3 s at 25 fps
    updates = feed(chosen, scores)
    assert [e.kind for e in updates] == [EventKind.UPDATE] * 3
    assert [e.frame_index for e in updates] == [0, 25, 50]
    final = chosen.end(1)[0]
    assert final.kind is EventKind.FINAL and final.event_id == "cam:r1:1:3"


def test_periodic_stays_quiet_when_the_best_does_not_improve() -> None:
    chosen = selector(policy="periodic", period=0.1, min_track_length=1)
    updates = feed(chosen, [0.9] + [0.5] * 50)
    assert len(updates) == 1


def test_early_emits_once_past_the_threshold_then_only_on_the_margin() -> None:
    chosen = selector(policy="early", threshold=0.6, margin=0.1, min_track_length=2)
    updates = feed(chosen, [0.7, 0.65, 0.75, 0.79, 0.81, 0.5, 0.95])
    # 0.7 is seen at the first sighting but the track only counts from the second.
    assert [round(e.quality, 2) for e in updates] == [0.7, 0.81, 0.95]
    assert [e.event_id for e in updates] == ["cam:r1:1:0", "cam:r1:1:1", "cam:r1:1:2"]
    assert chosen.end(1)[0].event_id == "cam:r1:1:3"


def test_early_never_emits_an_update_below_the_threshold_but_still_ends_with_a_final() -> None:
    chosen = selector(policy="early", threshold=0.9)
    assert feed(chosen, [0.3, 0.4, 0.5]) == []
    assert chosen.end(1)[0].quality == pytest.approx(0.5)


def test_finish_flushes_every_open_track_in_id_order() -> None:
    chosen = selector(min_track_length=1)
    feed(chosen, [0.4], track_id=7)
    feed(chosen, [0.6], track_id=3)
    assert [e.track_id for e in chosen.finish()] == [3, 7]
    assert chosen.open_tracks == 0
    assert chosen.tracks_seen == 2  # counted, not remembered: nothing grows with the tracks a run has seen


def test_aligned_crops_are_112_square() -> None:
    chosen = BestShotSelector("cam", SelectionConfig(min_track_length=1), CropConfig(mode="aligned"), "m", run_id="r1")
    feed(chosen, [0.5])
    crop = cv2.imdecode(np.frombuffer(chosen.end(1)[0].crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (112, 112, 3)


def test_every_run_has_its_own_id_that_sorts_by_start_time() -> None:
    run_ids = [new_run_id() for _ in range(1000)]
    assert len(set(run_ids)) == 1000
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{12}", run_id) for run_id in run_ids)
    assert run_ids[0][:16] <= run_ids[-1][:16]


# Standing: whole faces on intact frames first, whatever the scores say.

CUT_BOX = np.array([-12, 30, 28, 80], np.float32)  # reaches past the frame's left edge


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """A 160×120 frame whose BOX holds a real face (the photo's middle half)."""
    image = np.full((120, 160, 3), 120, np.uint8)
    image[5:105, 20:100] = cv2.resize(face_photos()[0], (80, 100), interpolation=cv2.INTER_AREA)
    image[5:105, 0:20] = cv2.resize(face_photos()[1], (20, 100), interpolation=cv2.INTER_AREA)
    return image


def shot(image: np.ndarray, index: int, *, corrupt: bool = False, garbled: bool = False) -> Frame:
    if garbled:
        image = image.copy()
        image[50:58] = (0, 135, 0)  # a bar of FFmpeg's green across the face
    return Frame("cam", index, index / 25, None, image, corrupt)


def observe(chosen: BestShotSelector, sightings: list[tuple[Frame, np.ndarray, float]], track_id: int = 1) -> list:
    events = []
    for seen, box, score in sightings:
        events += chosen.observe(track_id, seen, box, None, Quality(score, {}))
    return events


def test_the_face_frames_are_whole_and_clean_and_the_barred_one_garbled(portrait: np.ndarray) -> None:
    assert not integrity.is_garbled(portrait, BOX) and not integrity.is_cut_off(BOX, 160, 120)
    assert integrity.is_garbled(shot(portrait, 0, garbled=True).image, BOX)
    assert integrity.is_cut_off(CUT_BOX, 160, 120) and not integrity.is_garbled(portrait, CUT_BOX)


def test_a_corrupt_frame_is_never_the_best_even_with_the_highest_score(portrait: np.ndarray) -> None:
    chosen = selector()
    observe(chosen, [(shot(portrait, 0), BOX, 0.3), (shot(portrait, 1, corrupt=True), BOX, 0.95),
                     (shot(portrait, 2), BOX, 0.5), (shot(portrait, 3, corrupt=True), BOX, 0.9)])
    [event] = chosen.end(1)
    assert event.frame_index == 2 and event.quality == pytest.approx(0.5)
    assert event.sightings == 4  # corrupt sightings still count as sightings of the track
    assert not chosen.dropped


def test_a_track_seen_only_on_corrupt_frames_emits_nothing_and_counts_why(portrait: np.ndarray) -> None:
    chosen = selector(policy="early", threshold=0.1, min_track_length=1)
    updates = observe(chosen, [(shot(portrait, i, corrupt=True), BOX, 0.9) for i in range(4)])
    assert updates == []
    assert chosen.end(1) == []
    assert chosen.dropped == {"corrupt_frames_only": 4}


def test_a_short_track_counts_its_sightings_as_short_track(portrait: np.ndarray) -> None:
    chosen = selector(min_track_length=3)
    observe(chosen, [(shot(portrait, 0), BOX, 0.9), (shot(portrait, 1, corrupt=True), BOX, 0.9)])
    observe(chosen, [(shot(portrait, i), BOX, 0.5) for i in range(3)], track_id=2)
    assert chosen.end(1) == [] and len(chosen.end(2)) == 1
    assert chosen.dropped == {"short_track": 2}  # short first, whatever its frames were


@pytest.mark.parametrize("cut_first", [True, False])
def test_a_cut_off_face_loses_to_a_whole_one_with_a_lower_score(portrait: np.ndarray, cut_first: bool) -> None:
    chosen = selector()
    sightings = [(shot(portrait, 0), CUT_BOX, 0.9), (shot(portrait, 1), BOX, 0.4)]
    observe(chosen, sightings if cut_first else sightings[::-1])
    observe(chosen, [(shot(portrait, 2), CUT_BOX, 0.95)])
    [event] = chosen.end(1)
    assert event.box == tuple(float(v) for v in BOX) and event.quality == pytest.approx(0.4)


@pytest.mark.parametrize("garbled_first", [True, False])
def test_a_garbled_face_loses_to_a_clean_one_with_a_lower_score(portrait: np.ndarray, garbled_first: bool) -> None:
    chosen = selector()
    sightings = [(shot(portrait, 0, garbled=True), BOX, 0.9), (shot(portrait, 1), BOX, 0.4)]
    observe(chosen, sightings if garbled_first else sightings[::-1])
    observe(chosen, [(shot(portrait, 2, garbled=True), BOX, 0.95)])
    [event] = chosen.end(1)
    assert event.frame_index == 1 and event.quality == pytest.approx(0.4)


def test_a_garbled_face_loses_even_to_a_cut_off_one(portrait: np.ndarray) -> None:
    chosen = selector()
    observe(chosen, [(shot(portrait, 0, garbled=True), BOX, 0.9), (shot(portrait, 1), CUT_BOX, 0.2),
                     (shot(portrait, 2, garbled=True), BOX, 0.99)])
    assert chosen.end(1)[0].frame_index == 1


def test_a_track_seen_only_garbled_still_ends_with_its_best_garbled_sighting(portrait: np.ndarray) -> None:
    chosen = selector()
    observe(chosen, [(shot(portrait, i, garbled=True), BOX, score) for i, score in enumerate([0.2, 0.7, 0.4])])
    [event] = chosen.end(1)
    assert event.frame_index == 1 and not chosen.dropped


def test_the_early_policy_never_sends_an_update_for_a_corrupt_frame(portrait: np.ndarray) -> None:
    chosen = selector(policy="early", threshold=0.6, margin=0.05, min_track_length=1)
    updates = observe(chosen, [(shot(portrait, 0), BOX, 0.5), (shot(portrait, 1, corrupt=True), BOX, 0.99),
                               (shot(portrait, 2), BOX, 0.7)])
    assert [(e.frame_index, round(e.quality, 2)) for e in updates] == [(2, 0.7)]


def test_a_small_whole_clean_face_beats_a_cut_off_one_with_a_lower_score(portrait: np.ndarray) -> None:
    image = portrait.copy()
    image[40:80, 100:140] = cv2.resize(face_photos()[0], (40, 40), interpolation=cv2.INTER_AREA)
    small = np.array([110, 50, 130, 70], np.float32)  # the face box: the photo's middle half, 20 px
    chosen = selector()
    observe(chosen, [(shot(image, 0), CUT_BOX, 0.3), (shot(image, 1), small, 0.6), (shot(image, 2), CUT_BOX, 0.3)])
    assert chosen.end(1)[0].frame_index == 1
