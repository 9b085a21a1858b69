"""Composed clips: real faces on a face-free background, with a truth of their best moment."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yuface

from fiqa_stream.media.clips import (
    ClipTruth,
    FaceTruth,
    compose_face_clip,
    compose_nonface_clip,
    corrupt_copy,
    demo_clip,
    garbage_file,
)


def decode(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def faces_in(image: np.ndarray) -> list[tuple[float, float, float, float]]:
    """yuface boxes ``(x, y, w, h)`` at confidence 0.5."""
    _, boxes, _ = yuface.detect(np.ascontiguousarray(image), conf=0.5)
    return [tuple(float(v) for v in box) for box in boxes.reshape(-1, 4)]


def detected_at(image: np.ndarray, face: FaceTruth, frame: int) -> tuple[int, int, int, int] | None:
    """The detected box whose centre is within a quarter box of the truth centre, if any."""
    cx, cy = face.centers[frame]
    for x, y, w, h in faces_in(image):
        if abs(x + w / 2 - cx) < w / 4 and abs(y + h / 2 - cy) < h / 4:
            return round(x), round(y), round(w), round(h)
    return None


def sharpness(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    grey = cv2.cvtColor(image[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipTruth:
    path = tmp_path_factory.mktemp("synthetic") / "short.mp4"
    return compose_face_clip(path, width=640, height=360, fps=25.0, seconds=2.0, faces=3, seed=5)


def test_the_clip_decodes_to_frame_count_frames_of_its_size_at_i_over_fps(
    short_clip: ClipTruth,
) -> None:
    frames = decode(short_clip.path)
    assert len(frames) == short_clip.frame_count == 50
    assert {(f.width, f.height) for f in frames} == {(640, 360)}
    assert [f.time for f in frames] == pytest.approx([i / 25.0 for i in range(50)])


def test_the_truth_describes_each_face_window_and_centre(short_clip: ClipTruth) -> None:
    assert [f.face_id for f in short_clip.faces] == [0, 1, 2]
    for face in short_clip.faces:
        first, last = face.best_frames
        assert face.first_frame <= first <= last <= face.last_frame and last - first + 1 >= 3
        assert sorted(face.centers) == list(range(face.first_frame, face.last_frame + 1))
        assert all(0 <= x < 640 and 0 <= y < 360 for x, y in face.centers.values())


def test_each_face_is_found_at_its_best_and_is_sharper_than_when_it_appears(
    short_clip: ClipTruth,
) -> None:
    frames = [f.to_ndarray(format="bgr24") for f in decode(short_clip.path)]
    for face in short_clip.faces:
        best = sum(face.best_frames) // 2
        box = detected_at(frames[best], face, best)
        assert box is not None, f"face {face.face_id} not near {face.centers[best]} at {best}"
        cx, cy = face.centers[face.first_frame]
        x, y, w, h = box
        first_box = (round(cx - w / 2), round(cy - h / 2), w, h)
        assert sharpness(frames[best], box) > 2 * sharpness(frames[face.first_frame], first_box)


def test_faces_overlap_in_time_but_never_in_space(tmp_path: Path) -> None:
    clip = compose_face_clip(tmp_path / "c.mp4", width=640, height=360, seconds=5, faces=4, seed=2)
    shared = set(clip.faces[0].centers) & set(clip.faces[1].centers)
    assert shared, "windows should overlap so several faces share the screen"
    for frame in range(clip.frame_count):
        visible = [f.centers[frame] for f in clip.faces if frame in f.centers]
        for i, (x1, y1) in enumerate(visible):
            for x2, y2 in visible[i + 1 :]:
                assert abs(y1 - y2) > 90 or abs(x1 - x2) > 160


def test_a_clip_without_faces_has_no_detection_in_any_frame(tmp_path: Path) -> None:
    clip = compose_nonface_clip(tmp_path / "none.mp4", width=640, height=360, seconds=2.0, seed=1)
    frames = decode(clip.path)
    assert clip.faces == () and len(frames) == clip.frame_count == 50
    assert all(faces_in(f.to_ndarray(format="bgr24")) == [] for f in frames)


def test_the_same_seed_gives_the_same_truth(tmp_path: Path) -> None:
    def truth(name: str, seed: int) -> ClipTruth:
        path = tmp_path / name
        return compose_face_clip(path, width=320, height=180, seconds=2, faces=2, seed=seed)

    a, b, c = truth("a.mp4", 4), truth("b.mp4", 4), truth("c.mp4", 5)
    assert a.faces == b.faces
    assert a.faces != c.faces


def test_too_many_faces_for_the_clip_length_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="faces do not fit"):
        compose_face_clip(tmp_path / "x.mp4", width=640, height=360, seconds=3.0, faces=8)
    assert not (tmp_path / "x.mp4").exists()


def test_the_demo_clip_is_composed_once_and_then_reused(tmp_path: Path) -> None:
    path = demo_clip(tmp_path / "cache")
    assert path.parent == tmp_path / "cache" and path.stat().st_size > 0
    assert os.listdir(path.parent) == [path.name]
    mtime = path.stat().st_mtime_ns
    assert demo_clip(tmp_path / "cache") == path
    assert path.stat().st_mtime_ns == mtime


def test_the_demo_cache_defaults_to_fiqa_stream_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIQA_STREAM_CACHE", str(tmp_path / "env"))
    (tmp_path / "env").mkdir()
    cached = tmp_path / "env" / "demo-v1.mp4"
    cached.write_bytes(b"already composed")
    assert demo_clip() == cached


def test_helpers_make_truncated_and_garbage_files(short_clip: ClipTruth, tmp_path: Path) -> None:
    cut = corrupt_copy(short_clip.path, tmp_path / "cut.mp4", keep_fraction=0.25)
    assert cut.stat().st_size == short_clip.path.stat().st_size // 4
    garbage = garbage_file(tmp_path / "garbage.mp4")
    assert garbage.stat().st_size > 0
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(garbage)).close()
