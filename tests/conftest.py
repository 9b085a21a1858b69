"""Fixtures shared by the whole suite: real clips composed from real face photos."""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from fiqa_stream.media.clips import (
    ClipTruth,
    compose_face_clip,
    compose_nonface_clip,
    corrupt_copy,
    flat_clip,
    garbage_file,
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo clip cache never touches the user's home during tests."""
    monkeypatch.setenv("FIQA_STREAM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that runs the CLI in-process points the root logger at the stream pytest
    captured for it; that stream is closed once the test ends, so later logging would fail."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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
def huge_frame_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One flat 16000×16000 frame, lossless, about 300 KB on disk: decoded to BGR it would
    take 768 MB, about twice the 8K (7680×4320) default limit in pixels."""
    return flat_clip(tmp_path_factory.mktemp("clips") / "huge.mov", [(16000, 16000)])


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


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    return free_port()


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


class MosquittoBroker:
    """Debian's mosquitto on a free loopback port, with a config and data folder of its own.

    Persistence is on: a stop (SIGTERM, what a service restart sends) saves retained
    messages, persistent sessions and their queued messages, and a start on the same port
    and folder restores them. ``users`` adds a password file made by ``mosquitto_passwd -b``
    and refuses anonymous clients; ``acl`` is the text of an ACL file (``reload`` rereads
    it); ``tls`` (certificate, key) serves TLS on the port.
    """

    def __init__(self, workdir: Path, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None, acl: str | None = None) -> None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
        if binary is None:
            pytest.skip("mosquitto is not installed (scripts/test.sh installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if users else 'true'}",
            "persistence true",
            f"persistence_location {workdir}/",
            "max_queued_messages 1000000",
            "user root",  # when run as root, stay root: the data folder is the test's own
            f"log_dest file {workdir}/mosquitto.log",
        ]
        if users:
            password_file = workdir / "passwords"
            for n, (user, password) in enumerate(users.items()):
                passwd = shutil.which("mosquitto_passwd") or "mosquitto_passwd"
                subprocess.run([passwd, *(["-c"] if n == 0 else []), "-b", str(password_file), user, password],
                               check=True, capture_output=True)
            lines.append(f"password_file {password_file}")
        if acl is not None:
            self.acl = workdir / "acl"
            self.acl.write_text(acl)
            lines.append(f"acl_file {self.acl}")
        if tls:
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> MosquittoBroker:
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}: see {self.workdir}/mosquitto.log")

    def reload(self) -> None:
        """SIGHUP: mosquitto reads its password and ACL files again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def save(self) -> None:
        """SIGUSR1: mosquitto writes its persistence file now (sessions, retained, queued)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)
        time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: what it had not saved is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def mosquitto_brokers(tmp_path: Path) -> Iterator[Callable[..., MosquittoBroker]]:
    """Starts brokers on demand: ``mosquitto_brokers(users={...}, tls=(cert, key), acl=TEXT)``."""
    started: list[MosquittoBroker] = []

    def start(users: dict[str, str] | None = None, tls: tuple[Path, Path] | None = None,
              acl: str | None = None) -> MosquittoBroker:
        broker = MosquittoBroker(tmp_path / f"mosquitto-{len(started)}", users, tls, acl).start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.kill()


@pytest.fixture
def mosquitto(mosquitto_brokers: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return mosquitto_brokers()


SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).resolve().parents[1] / "scripts" / "rtsp_test_server.py"


class RtspServer:
    """GStreamer's RTSP server on a free loopback port, serving clips in a loop.

    It runs under Debian's system Python (python3-gi); tests kill, freeze (SIGSTOP)
    and restart it to play a camera that reboots or stalls.
    """

    def __init__(self, clips: list[Path], user: str | None = None, password: str | None = None) -> None:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                               capture_output=True)
        if probe.returncode != 0:
            pytest.skip("GStreamer's RTSP server is not installed (scripts/test.sh installs it)")
        self.clips = clips
        self.user = user
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    def url(self, mount: str = "/cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self) -> RtspServer:
        command = [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(self.port), *map(str, self.clips)]
        if self.user:
            command += ["--user", self.user, "--password", self.password or ""]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the RTSP test server did not start")
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def rtsp_servers() -> Iterator[Callable[..., RtspServer]]:
    """Starts RTSP servers on demand: ``rtsp_servers([clip], user=..., password=...)``."""
    started: list[RtspServer] = []

    def start(clips: list[Path], user: str | None = None, password: str | None = None) -> RtspServer:
        server = RtspServer(clips, user, password).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None:
            server.thaw()
        server.kill()


@pytest.fixture
def rtsp_camera(face_clip: ClipTruth, rtsp_servers: Callable[..., RtspServer]) -> RtspServer:
    return rtsp_servers([face_clip.path])


@functools.cache
def cuda_ready() -> bool:
    """A CUDA GPU that both torch and CuPy can use."""
    try:
        import cupy
        import torch
    except ImportError:
        return False
    try:
        return bool(torch.cuda.is_available()) and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - a missing driver or runtime means no usable GPU
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None and not cuda_ready():
        pytest.skip("needs a CUDA GPU with torch and CuPy")


@dataclass(frozen=True)
class VideoArchive:
    """A folder of small videos as an archive holds them, good and bad, plus an index config."""

    folder: Path
    config: Path
    good: dict[str, ClipTruth]
    bad: tuple[str, ...]


@pytest.fixture(scope="session")
def video_archive(tmp_path_factory: pytest.TempPathFactory) -> VideoArchive:
    """Three face clips (one in a subfolder), one without faces, a truncated copy, an empty
    file, random bytes under a video name and a text file; 320×240, 15 fps, 3 s each."""
    folder = tmp_path_factory.mktemp("archive")
    (folder / "day2").mkdir()
    size = {"width": 320, "height": 240, "fps": 15.0, "seconds": 3.0}
    good = {
        "lobby.mp4": compose_face_clip(folder / "lobby.mp4", faces=1, seed=1, **size),
        "gate.mp4": compose_face_clip(folder / "gate.mp4", faces=2, seed=2, **size),
        "day2/door.mp4": compose_face_clip(folder / "day2" / "door.mp4", faces=1, seed=3, **size),
        "empty-hall.mp4": compose_nonface_clip(folder / "empty-hall.mp4", seed=4, **size),
    }
    corrupt_copy(folder / "gate.mp4", folder / "cut.mp4", keep_fraction=0.5)
    (folder / "zero.mp4").write_bytes(b"")
    garbage_file(folder / "noise.mp4")
    (folder / "notes.txt").write_text("not a video\n")
    config = folder.parent / f"{folder.name}-index.yaml"
    # The weight-free scorer keeps these tests independent of the shipped model files.
    config.write_text("scorer: {type: heuristic}\n")
    return VideoArchive(folder, config, good, ("cut.mp4", "zero.mp4", "noise.mp4"))


OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


@pytest.fixture(scope="session")
def opencv_doc_frames() -> Callable[[str], list[np.ndarray]]:
    """Decodes a clip of Debian opencv-doc's examples/data (real footage no one here made) into BGR
    frames; the test is skipped, saying so, where the package is not installed."""

    def frames(name: str) -> list[np.ndarray]:
        path = OPENCV_DOC_DATA / name
        if not path.exists():
            pytest.skip(f"{path} is missing (Debian package opencv-doc)")
        with av.open(str(path)) as container:
            return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]

    return frames
