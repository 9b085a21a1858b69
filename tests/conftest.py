"""Fixtures shared by the whole suite: real clips composed from real face photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiqa_stream.stream.synthetic import ClipTruth, compose_face_clip, compose_nonface_clip


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo clip cache never touches the user's home during tests."""
    monkeypatch.setenv("FIQA_STREAM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipTruth:
    """A 640×360 clip, 25 fps, with three real faces that each have a known best moment."""
    path = tmp_path_factory.mktemp("clips") / "faces.mp4"
    return compose_face_clip(path, width=640, height=360, fps=25.0, seconds=5.0, faces=3, seed=7)


@pytest.fixture(scope="session")
def hd_face_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipTruth:
    """A 1280×720 clip (detected on a downscaled copy) with two faces."""
    path = tmp_path_factory.mktemp("clips") / "faces-720p.mp4"
    return compose_face_clip(path, width=1280, height=720, fps=25.0, seconds=4.0, faces=2, seed=11)


@pytest.fixture(scope="session")
def nonface_clip(tmp_path_factory: pytest.TempPathFactory) -> ClipTruth:
    path = tmp_path_factory.mktemp("clips") / "no-faces.mp4"
    return compose_nonface_clip(path, width=640, height=360, fps=25.0, seconds=2.0, seed=3)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"
