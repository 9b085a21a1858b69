"""Scene cuts: the frames of edited video that start another shot, and nothing else."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from fiqa_stream.stream.config import TrackerConfig
from fiqa_stream.stream.shot_boundary import ShotBoundaryDetector, cell_change

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# The frames of Debian opencv-doc's Megamind.avi (270 frames, 720×528) that open a new shot.
MEGAMIND_CUTS = [98, 154, 200]
THRESHOLD = TrackerConfig().scene_cut_threshold


def decode(name: str) -> list[np.ndarray]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is missing (Debian package opencv-doc)")
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def megamind() -> list[np.ndarray]:
    return decode("Megamind.avi")


def cuts(frames: list[np.ndarray], threshold: float = THRESHOLD, every: int = 1) -> list[int]:
    detector = ShotBoundaryDetector(threshold)
    return [index for index in range(0, len(frames), every) if detector.is_cut(frames[index])]


def test_the_three_cuts_of_megamind_are_cuts_and_no_other_frame_is(megamind: list[np.ndarray]) -> None:
    assert len(megamind) == 270
    assert cuts(megamind) == MEGAMIND_CUTS


def test_decode_garbage_across_part_of_the_picture_is_not_a_cut() -> None:
    # Megamind_bugy.avi is the same clip with bars of decode garbage on 15 frames.
    assert cuts(decode("Megamind_bugy.avi")) == MEGAMIND_CUTS


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
