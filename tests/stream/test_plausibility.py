"""Which detections can be faces: landmarks where a face has them, and no box inside a surer one."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.yunet import YuNetDetector
from fiqa_stream.media.faces import face_photos
from fiqa_stream.stream.pipeline import Pipeline
from fiqa_stream.stream.plausibility import not_nested, plausible, subset
from fiqa_stream.types import Detections

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
# In the shot from frame 154 to 199 YuNet also boxes Roxanne's hair, at up to 0.83 confidence.
HAIR_SHOT = [160, 175, 190]
OTHER_SHOTS = [0, 60, 120, 210, 260]


@pytest.fixture(scope="module")
def megamind() -> dict[int, Detections]:
    """YuNet's detections on some frames of Debian opencv-doc's Megamind.avi."""
    if not MEGAMIND.exists():
        pytest.skip(f"{MEGAMIND} is missing (Debian package opencv-doc)")
    wanted = set(HAIR_SHOT + OTHER_SHOTS)
    with av.open(str(MEGAMIND)) as container:
        frames = {i: f.to_ndarray(format="bgr24") for i, f in enumerate(container.decode(video=0)) if i in wanted}
    with YuNetDetector(YuNetConfig()) as detector:
        return dict(zip(frames, detector.detect(list(frames.values())), strict=True))


def face(x: float, y: float, size: float, eyes: float = 0.45, mouth: float = 0.78) -> tuple[list, list]:
    """A square box and landmarks with the eyes and mouth at these fractions of its height."""
    box = [x, y, x + size, y + size]
    eye_y, mouth_y = y + eyes * size, y + mouth * size
    points = [[x + 0.3 * size, eye_y], [x + 0.7 * size, eye_y], [x + 0.5 * size, (eye_y + mouth_y) / 2],
              [x + 0.35 * size, mouth_y], [x + 0.65 * size, mouth_y]]
    return box, points


def detections(faces: list[tuple[list, list]], scores: list[float] | None = None) -> Detections:
    return Detections(
        np.array([box for box, _ in faces], np.float32).reshape(-1, 4),
        np.array(scores or [0.9] * len(faces), np.float32),
        np.array([points for _, points in faces], np.float32).reshape(-1, 5, 2),
    )


def test_the_box_yunet_draws_around_hair_is_implausible_and_the_face_beside_it_is_not(
    megamind: dict[int, Detections],
) -> None:
    for index in HAIR_SHOT:
        found = megamind[index]
        keep = plausible(found)
        assert len(found) == 2 and keep.sum() == 1, (index, found.boxes, found.scores)
        hair = int(np.flatnonzero(~keep)[0])
        assert found.scores[hair] >= 0.6  # confident enough to start a track on its own
        # The hair box reaches above the frame; the eyes it "found" are near its top.
        assert found.boxes[hair, 1] < 0
        assert found.scores[int(np.flatnonzero(keep)[0])] > 0.85


def test_every_face_yunet_finds_in_the_other_shots_is_plausible(megamind: dict[int, Detections]) -> None:
    found = [megamind[index] for index in OTHER_SHOTS]
    assert sum(len(d) for d in found) >= len(OTHER_SHOTS)
    for index, d in zip(OTHER_SHOTS, found, strict=True):
        assert plausible(d).all(), (index, d.boxes)


@pytest.mark.parametrize(("eyes", "mouth", "ok"), [
    (0.45, 0.78, True),  # a face
    (0.21, 0.50, True),  # near the edges of both bands
    (0.69, 1.10, True),  # eyes low, mouth below the box (a chin cut by the box)
    (0.10, 0.60, False),  # eyes at the top: a box around hair
    (0.75, 1.00, False),  # eyes too low
    (0.45, 0.40, False),  # mouth above its band
    (0.45, 1.20, False),  # mouth far below the box
    (0.50, 0.60, False),  # mouth too close below the eyes
    (0.60, 0.50, False),  # mouth above the eyes: upside down
])
def test_landmarks_must_sit_where_a_faces_do(eyes: float, mouth: float, ok: bool) -> None:
    assert plausible(detections([face(100, 100, 80, eyes, mouth)])).tolist() == [ok]


def test_detections_without_landmarks_are_all_plausible() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 5, 200, 200]], np.float32)
    assert plausible(Detections(boxes, np.array([0.9, 0.4], np.float32), None)).tolist() == [True, True]
    assert plausible(Detections.empty()).tolist() == []


def test_of_a_box_inside_another_only_the_more_confident_is_kept() -> None:
    big, small = face(100, 100, 200), face(150, 150, 80)
    assert not_nested(detections([big, small], [0.9, 0.5])).tolist() == [True, False]
    assert not_nested(detections([big, small], [0.5, 0.9])).tolist() == [False, True]


def test_boxes_that_overlap_less_than_60_percent_of_the_smaller_are_both_kept() -> None:
    # 80×80 boxes 40 px apart share half of each: two faces side by side, close.
    pair = detections([face(100, 100, 80), face(140, 100, 80)], [0.9, 0.8])
    assert not_nested(pair).tolist() == [True, True]
    # 20 px apart they share 75 %: one face boxed twice.
    twice = detections([face(100, 100, 80), face(120, 100, 80)], [0.8, 0.9])
    assert not_nested(twice).tolist() == [False, True]


def test_a_box_dropped_as_nested_drops_nothing_itself() -> None:
    # b lies inside a; c lies inside b but mostly outside a: c stays.
    a, b, c = face(100, 100, 100), face(150, 100, 60), face(180, 110, 40)
    assert not_nested(detections([a, b, c], [0.9, 0.8, 0.7])).tolist() == [True, False, True]


def test_a_single_box_and_no_box_are_never_nested() -> None:
    assert not_nested(detections([face(0, 0, 50)])).tolist() == [True]
    assert not_nested(Detections.empty()).tolist() == []


def test_subset_keeps_the_chosen_detections_in_order_with_their_landmarks() -> None:
    found = detections([face(0, 0, 50), face(100, 0, 50), face(200, 0, 50)], [0.7, 0.8, 0.9])
    kept = subset(found, np.array([True, False, True]))
    np.testing.assert_array_equal(kept.boxes, found.boxes[[0, 2]])
    np.testing.assert_array_equal(kept.scores, np.array([0.7, 0.9], np.float32))
    assert kept.landmarks is not None
    np.testing.assert_array_equal(kept.landmarks, found.landmarks[[0, 2]])
    bare = Detections(found.boxes, found.scores, None)
    assert subset(bare, np.array([False, True, False])).landmarks is None


def test_the_pipeline_drops_the_hair_box_counts_it_and_makes_no_best_shot_of_it(tmp_path: Path) -> None:
    if not MEGAMIND.exists():
        pytest.skip(f"{MEGAMIND} is missing (Debian package opencv-doc)")
    clip = tmp_path / "megamind-180.mp4"  # frames 180-199: the hair box's shot, Roxanne's face beside it
    with av.open(str(MEGAMIND)) as source, av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 720, 528, "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            if 180 <= index < 200:
                image = frame.to_ndarray(format="bgr24")
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    out = tmp_path / "out"
    pipeline = Pipeline(parse_config({
        "sources": [{"url": str(clip), "id": "mm"}], "sinks": [{"type": "directory", "path": str(out)}],
        "scorer": {"type": "heuristic"},
    }))
    summary = pipeline.run()
    dropped = summary.sources[0].drops["implausible_box"]
    assert dropped >= 20  # the hair box on each of the 20 frames, and the boxes nested in it
    assert pipeline.metrics.registry.get_sample_value(
        "fiqa_faces_dropped_total", {"source": "mm", "reason": "implausible_box"}) == dropped
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events] == ["final"]  # Roxanne's face, and nothing else
    assert events[0]["box"][1] > 0  # not the hair box, which reaches above the frame


def test_every_real_face_yunet_finds_tilted_by_up_to_60_degrees_is_plausible() -> None:
    frames = []
    for photo in face_photos():
        frame = np.full((400, 400, 3), 120, np.uint8)
        frame[72:328, 72:328] = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)
        for angle in (30, -60):
            turn = cv2.getRotationMatrix2D((200, 200), angle, 1.0)
            frames.append(cv2.warpAffine(frame, turn, (400, 400), borderValue=(120, 120, 120)))
    with YuNetDetector(YuNetConfig()) as detector:
        found = [d.take(d.scores >= 0.6) for d in detector.detect(frames)]
    assert sum(len(d) for d in found) >= 0.8 * len(frames)
    assert all(plausible(d).all() for d in found)
