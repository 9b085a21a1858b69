"""Fixtures shared by the whole suite: real clips composed from real face photos."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A real redis-server on a free loopback port with its own data folder.

    Started with ``appendfsync always``, so what it acknowledged survives its kill -9,
    and it can be killed and started again on the same port and data.
    """

    def __init__(self, workdir: Path, *extra: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()
