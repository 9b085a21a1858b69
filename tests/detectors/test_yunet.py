"""YuNetDetector on real faces: what it finds, where, and how large frames are handled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_stream.detectors import Detector, build_detector
from fiqa_stream.detectors.config import YuNetConfig
from fiqa_stream.detectors.yunet import YuNetDetector, child_threads, detector_processes
from fiqa_stream.runtime import Runtime


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inner = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inner / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inner))


def test_it_is_the_registered_yunet_detector() -> None:
    detector = build_detector(YuNetConfig())
    assert isinstance(detector, YuNetDetector)
    assert isinstance(detector, Detector)
    assert detector.name == "yunet"


def test_a_mirrored_frame_keeps_the_image_left_eye_first(astronaut: np.ndarray) -> None:
    # A negatively strided view: the detector must hand yuface a contiguous copy.
    reference, mirrored = YuNetDetector(YuNetConfig()).detect([astronaut, astronaut[:, ::-1]])
    assert len(mirrored) == 1 and mirrored.landmarks is not None
    x1, y1, x2, y2 = reference.boxes[0]
    np.testing.assert_allclose(mirrored.boxes[0], [512 - x2, y1, 512 - x1, y2], atol=4)
    assert mirrored.landmarks[0, 0, 0] < mirrored.landmarks[0, 1, 0]


def test_it_finds_all_six_faces_of_the_group_photo(group_photo: np.ndarray) -> None:
    (found,) = YuNetDetector(YuNetConfig(max_width=1280)).detect([group_photo])
    assert len(found) == 6
    assert found.boxes.dtype == np.float32 and found.scores.dtype == np.float32
    assert np.all((found.scores > 0.5) & (found.scores <= 1.0))


def test_frames_above_960_pixels_never_make_yuface_warn(astronaut: np.ndarray) -> None:
    detector = YuNetDetector(YuNetConfig(max_width=4096))
    wide = cv2.resize(astronaut, (1920, 1920))
    tall = np.zeros((1600, 800, 3), np.uint8)
    tall[400:1200] = cv2.resize(astronaut, (800, 800))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reference, wide_found, tall_found = detector.detect([astronaut, wide, tall])
    assert len(wide_found) == len(tall_found) == 1
    assert iou(wide_found.boxes[0] / 3.75, reference.boxes[0]) > 0.85
    assert iou((tall_found.boxes[0] - [0, 400, 0, 400]) * 512 / 800, reference.boxes[0]) > 0.85


def test_a_blank_frame_has_no_faces(blank: np.ndarray) -> None:
    (found,) = YuNetDetector(YuNetConfig()).detect([blank])
    assert len(found) == 0
    assert found.landmarks is not None and found.landmarks.shape == (0, 5, 2)


def test_a_batch_gives_one_result_per_image_in_order(astronaut: np.ndarray, blank: np.ndarray) -> None:
    with YuNetDetector(YuNetConfig()) as detector:
        assert detector.detect([]) == []
        assert [len(found) for found in detector.detect([astronaut, blank])] == [1, 0]


def test_the_confidence_threshold_drops_weaker_faces(group_photo: np.ndarray) -> None:
    (found,) = YuNetDetector(YuNetConfig(confidence=0.99)).detect([group_photo])
    assert len(found) == 0


def resident_mb(pids: list[int]) -> float:
    pages = 0
    for pid in pids:
        with open(f"/proc/{pid}/statm") as statm:
            pages += int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("processes", [1, 2])
def test_memory_stays_flat_over_2000_calls(astronaut: np.ndarray, processes: int) -> None:
    # yuface itself keeps ~35 kB per call (70 MB over these calls); its processes are replaced instead.
    small = cv2.resize(astronaut, (96, 96))
    with YuNetDetector(YuNetConfig(recycle_growth_mb=4, processes=processes)) as detector:
        assert detector.host is not None
        # As many images per call as children: each child takes one.
        batch = [small] * processes
        for _ in range(200):
            detector.detect(batch)
        start = resident_mb([os.getpid(), *detector.host.pids])
        highest = start
        for call in range(2000 // processes):
            detector.detect(batch)
            if call % 50 == 0:
                highest = max(highest, resident_mb([os.getpid(), *detector.host.pids]))
        assert detector.host.recycled >= processes
    # Each child may grow its 4 MB before it is replaced.
    assert highest - start < 4 * processes + 1


def test_it_finds_the_same_faces_in_its_process_as_in_this_one(group_photo: np.ndarray) -> None:
    with YuNetDetector(YuNetConfig()) as recycled, YuNetDetector(YuNetConfig(recycle_growth_mb=0)) as inline:
        assert recycled.host is not None and inline.host is None
        (apart,), (here,) = recycled.detect([group_photo]), inline.detect([group_photo])
    np.testing.assert_array_equal(apart.boxes, here.boxes)
    np.testing.assert_array_equal(apart.scores, here.scores)
    np.testing.assert_array_equal(apart.landmarks, here.landmarks)


def test_children_side_by_side_answer_each_image_in_order(group_photo: np.ndarray, astronaut: np.ndarray) -> None:
    images = [group_photo, astronaut, np.zeros((240, 320, 3), np.uint8), astronaut[:, ::-1], group_photo]
    with YuNetDetector(YuNetConfig(processes=3, max_width=1280)) as pooled, \
            YuNetDetector(YuNetConfig(recycle_growth_mb=0, max_width=1280)) as inline:
        assert pooled.host is not None and len(pooled.host.pids) == 3
        apart, here = pooled.detect(images), inline.detect(images)
    assert [len(found) for found in apart] == [6, 1, 0, 1, 6]
    for one, other in zip(apart, here, strict=True):
        np.testing.assert_array_equal(one.boxes, other.boxes)
        np.testing.assert_array_equal(one.scores, other.scores)


def test_a_killed_detector_process_among_two_is_replaced_and_every_image_answered(astronaut: np.ndarray) -> None:
    with YuNetDetector(YuNetConfig(processes=2)) as detector:
        assert detector.host is not None
        detector.detect([astronaut, astronaut])
        killed, kept = detector.host.pids
        os.kill(killed, signal.SIGKILL)
        found = detector.detect([astronaut] * 4)
        assert [len(f) for f in found] == [1, 1, 1, 1]
        assert killed not in detector.host.pids and kept in detector.host.pids


def test_the_default_is_one_child_per_core_of_this_process_at_most_four() -> None:
    assert detector_processes(YuNetConfig(), Runtime()) == min(4, len(os.sched_getaffinity(0)))
    assert detector_processes(YuNetConfig(), Runtime(threads=1)) == 1
    assert detector_processes(YuNetConfig(processes=3), Runtime(threads=1)) == 3


def _environment(pid: int, timeout_s: float = 10.0) -> list[bytes]:
    """A process's environment. The kernel fills /proc/PID/environ a moment after the parent's
    vfork returns from the child's exec; a read before that comes back empty."""
    deadline = time.monotonic() + timeout_s
    while not (environ := Path(f"/proc/{pid}/environ").read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return environ.split(b"\0")


def test_each_child_gets_its_share_of_the_cores_as_openmp_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert child_threads(4, Runtime(threads=16)) == 4
    assert child_threads(2, Runtime(threads=2)) == 2
    assert child_threads(4, Runtime(threads=4)) == 2
    assert child_threads(1, Runtime(threads=1)) == 1
    with YuNetDetector(YuNetConfig(processes=2), Runtime(threads=8)) as detector:
        assert detector.host is not None
        environments = [_environment(pid) for pid in detector.host.pids]
    assert all(b"OMP_NUM_THREADS=4" in environment for environment in environments)


def test_a_worker_s_own_openmp_setting_is_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert child_threads(2, Runtime(threads=8)) is None


def test_a_killed_detector_process_is_replaced_and_the_call_answered(astronaut: np.ndarray) -> None:
    with YuNetDetector(YuNetConfig(processes=1)) as detector:
        assert detector.host is not None
        (killed,) = detector.host.pids
        os.kill(killed, signal.SIGKILL)
        (found,) = detector.detect([astronaut])
        assert len(found) == 1
        assert detector.host.pids != [killed]


def test_close_ends_every_detector_process() -> None:
    detector = YuNetDetector(YuNetConfig(processes=2))
    assert detector.host is not None
    pids = detector.host.pids
    detector.close()
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)


def test_the_detector_process_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "from fiqa_stream.detectors.config import YuNetConfig\n"
         "from fiqa_stream.detectors.yunet import YuNetDetector\n"
         "import time\n"
         "detector = YuNetDetector(YuNetConfig(processes=1))\n"
         "print(detector.host.pids[0], flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONSAFEPATH": "1"},
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
