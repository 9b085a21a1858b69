"""Whole sightings: a face box is garbled when decode garbage crosses it, cut off when it
leaves the frame; real clean faces are neither."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.yunet import YuNetDetector
from fiqa_stream.media.faces import face_photos
from fiqa_stream.stream.config import CropConfig
from fiqa_stream.stream.integrity import _garbage_blocks, is_cut_off, is_garbled
from fiqa_stream.stream.plausibility import plausible
from fiqa_stream.types import Detections

# Megamind_bugy.avi is Megamind.avi with decode garbage on some frames: at 5 and 25 grey
# and white bars run through both faces, at 20 a bar runs through the right face and a
# green bar across the top of the left one, at 75 the left face is half displaced sideways;
# at 10, 65 and 95 a bar runs just above or below a face, inside its loose crop.
CLEAN_SAMPLE = sorted({*range(0, 270, 10), 5, 25, 65, 75, 95})
FFMPEG_GREEN = (0, 135, 0)
LOOSE_MARGIN = CropConfig().margin  # what the default loose crop adds on every side


@pytest.fixture(scope="module")
def megamind(
    opencv_doc_frames: Callable[[str], list[np.ndarray]],
) -> Iterator[tuple[list[np.ndarray], list[np.ndarray], dict[int, Detections]]]:
    """Clean frames, damaged frames, and YuNet's confident, plausible faces on the clean frames sampled
    (not the box it draws around Roxanne's hair in frames 154-199)."""
    clean, damaged = opencv_doc_frames("Megamind.avi"), opencv_doc_frames("Megamind_bugy.avi")
    with YuNetDetector(YuNetConfig()) as detector:
        found = detector.detect([clean[index] for index in CLEAN_SAMPLE])
    faces = {index: d.take((d.scores >= 0.6) & plausible(d)) for index, d in zip(CLEAN_SAMPLE, found, strict=True)}
    yield clean, damaged, faces


def box_of(faces: Detections, side: str) -> np.ndarray:
    """The left or right of the two faces (Megamind's two characters)."""
    order = np.argsort(faces.boxes[:, 0] + faces.boxes[:, 2])
    assert len(order) == 2, faces.boxes
    return faces.boxes[order[0] if side == "left" else order[-1]]


@pytest.mark.parametrize("margin", [0.0, LOOSE_MARGIN])
def test_no_real_face_of_the_clean_clip_is_garbled(megamind: tuple, margin: float) -> None:
    clean, _, faces = megamind
    boxes = [(index, box) for index in CLEAN_SAMPLE for box in faces[index].boxes]
    assert len(boxes) >= len(CLEAN_SAMPLE)
    assert [(index, box.round().tolist()) for index, box in boxes if is_garbled(clean[index], box, margin)] == []


@pytest.mark.parametrize(("index", "side"), [(5, "left"), (5, "right"), (20, "right"), (25, "left"), (25, "right")])
def test_a_face_a_garbage_bar_runs_through_is_garbled(megamind: tuple, index: int, side: str) -> None:
    clean, damaged, faces = megamind
    box = box_of(faces[index], side)
    assert not is_garbled(clean[index], box)
    assert is_garbled(damaged[index], box)


@pytest.mark.parametrize(("index", "side"), [(10, "left"), (10, "right"), (65, "right"), (95, "left")])
def test_a_bar_that_misses_the_face_but_crosses_its_loose_crop_spoils_it(
    megamind: tuple, index: int, side: str
) -> None:
    clean, damaged, faces = megamind
    box = box_of(faces[index], side)
    assert not is_garbled(damaged[index], box)
    assert is_garbled(damaged[index], box, LOOSE_MARGIN)
    assert not is_garbled(clean[index], box, LOOSE_MARGIN)


def test_a_face_under_a_full_width_green_bar_is_garbled(megamind: tuple) -> None:
    _, damaged, faces = megamind
    assert is_garbled(damaged[20], box_of(faces[20], "left"))


@pytest.mark.xfail(strict=True, reason=(
    "Megamind_bugy frame 75, left face (YuNet box ~[272, 186, 400, 345]): half of the face is displaced "
    "sideways (47 % of the box's pixels differ from the clean frame by more than 30) and is_garbled says "
    "False: the displaced part has no straight horizontal edge, constant rows or lost 16x16 blocks"))
def test_a_face_half_displaced_by_decode_damage_is_garbled(megamind: tuple) -> None:
    _, damaged, faces = megamind
    assert is_garbled(damaged[75], box_of(faces[75], "left"))


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    """A real face photo on a 320×320 frame and the box of the face."""
    photo = face_photos()[0]
    frame = np.full((320, 320, 3), 90, np.uint8)
    frame[32:288, 32:288] = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)
    # The photo is the face box grown by half its size on every side: the box is its middle half.
    return frame, np.array([96, 96, 224, 224], np.float32)


def test_a_clean_real_face_is_not_garbled(face: tuple[np.ndarray, np.ndarray]) -> None:
    frame, box = face
    assert not is_garbled(frame, box)
    assert _garbage_blocks(frame, box) <= 1


def test_a_flat_green_bar_across_the_face_is_garbled(face: tuple[np.ndarray, np.ndarray]) -> None:
    frame, box = face
    barred = frame.copy()
    barred[150:160] = FFMPEG_GREEN
    assert is_garbled(barred, box)


def test_rows_shifted_against_their_neighbours_are_garbled(face: tuple[np.ndarray, np.ndarray]) -> None:
    frame, box = face
    shifted = frame.copy()
    shifted[160:] = np.roll(frame[160:], 40, axis=1)  # the lower half slid sideways, as a lost slice shows
    assert is_garbled(shifted, box)


def test_two_lost_macroblocks_make_a_face_garbled_one_does_not(face: tuple[np.ndarray, np.ndarray]) -> None:
    frame, box = face
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
    one, two = frame.copy(), frame.copy()
    one[144:160, 144:160] = noise  # blocks on the frame's 16-px grid, inside the box
    two[144:160, 144:160] = noise
    two[176:192, 112:128] = 255 - noise
    assert _garbage_blocks(one, box) == 1 and not is_garbled(one, box)
    assert _garbage_blocks(two, box) == 2 and is_garbled(two, box)


def test_garbage_outside_what_is_handed_over_does_not_count(face: tuple[np.ndarray, np.ndarray]) -> None:
    frame, box = face
    barred = frame.copy()
    barred[250:260] = FFMPEG_GREEN  # below the face box, inside its loose crop (to row 275)
    assert not is_garbled(barred, box)
    assert is_garbled(barred, box, LOOSE_MARGIN)
    barred = frame.copy()
    barred[290:300] = FFMPEG_GREEN  # below the loose crop too
    assert not is_garbled(barred, box, LOOSE_MARGIN)


def test_a_box_of_less_than_8_px_is_never_garbled(face: tuple[np.ndarray, np.ndarray]) -> None:
    frame, _ = face
    flat = np.full_like(frame, FFMPEG_GREEN)
    assert is_garbled(flat, np.array([100, 100, 140, 140], np.float32))  # one colour: a green frame
    assert not is_garbled(flat, np.array([100, 100, 107, 140], np.float32))
    assert not is_garbled(flat, np.array([400, 400, 460, 460], np.float32))  # wholly outside


@pytest.mark.parametrize(("box", "cut"), [
    ([0, 0, 320, 240], False),  # touching every edge is still inside
    ([10, 10, 60, 60], False),
    ([-1, 10, 60, 60], True),
    ([10, -0.5, 60, 60], True),
    ([280, 10, 320.5, 60], True),
    ([10, 200, 60, 241], True),
])
def test_a_box_is_cut_off_when_it_reaches_past_the_frame(box: list[float], cut: bool) -> None:
    assert is_cut_off(np.array(box, np.float32), 320, 240) is cut


def framed(photo: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo scaled so its face box is ``width`` px wide, on a grey frame, and that box."""
    side = 2 * width
    frame = np.full((side + 64, side + 64, 3), 100, np.uint8)
    frame[32 : 32 + side, 32 : 32 + side] = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    return frame, np.array([32 + width / 2, 32 + width / 2, 32 + 1.5 * width, 32 + 1.5 * width], np.float32)


@pytest.mark.parametrize("margin", [0.0, LOOSE_MARGIN])
@pytest.mark.parametrize("width", [64, 96, 160])
def test_no_clean_real_face_of_64_px_or_more_is_garbled(width: int, margin: float) -> None:
    flagged = [n for n, photo in enumerate(face_photos()) if is_garbled(*framed(photo, width), margin)]
    assert flagged == []


@pytest.mark.parametrize("margin", [0.0, LOOSE_MARGIN])
@pytest.mark.parametrize("width", [20, 32, 48])
def test_no_clean_real_face_of_the_sizes_tracked_is_garbled(width: int, margin: float) -> None:
    flagged = [n for n, photo in enumerate(face_photos()) if is_garbled(*framed(photo, width), margin)]
    assert flagged == []
