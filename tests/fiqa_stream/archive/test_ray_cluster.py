"""``fiqa-stream index --ray``: a real Ray cluster on loopback (a head and one worker node),
one of whose task worker processes is killed while it analyses a video."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fiqa_stream.media.clips import compose_face_clip

if TYPE_CHECKING:
    from conftest import VideoArchive

pytest.importorskip("ray")
BIN = Path(sys.executable).parent
TASK_TITLE = b"ray::index_video_task"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RayCluster:
    """``ray start --block`` for a head and a worker node, each in its own process group,
    so that stopping them kills exactly the processes they started."""

    def __init__(self) -> None:
        self.port = _free_port()
        # Ray's unix sockets live under the temp dir, whose path must stay short.
        self.temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
        self.nodes: list[subprocess.Popen[bytes]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, *args: str) -> None:
        common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--object-store-memory=100000000",
                  "--disable-usage-stats"]
        self.nodes.append(subprocess.Popen([str(BIN / "ray"), "start", *args, *common], start_new_session=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _alive_nodes(self) -> int:
        probe = subprocess.run(
            [sys.executable, "-c", f"import ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))"],
            capture_output=True, text=True, timeout=60,
        )
        return int(probe.stdout.strip() or 0) if probe.returncode == 0 else 0

    def start(self) -> RayCluster:
        self._start("--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp_dir}")
        self._start(f"--address={self.address}")
        deadline = time.monotonic() + 120
        while self._alive_nodes() < 2:
            if time.monotonic() > deadline or any(node.poll() is not None for node in self.nodes):
                raise RuntimeError("the local Ray cluster did not start")
            time.sleep(1)
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(node.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    node.wait(10)
                except subprocess.TimeoutExpired:
                    continue
        # Processes that left the groups (Ray daemonises some) carry the cluster's temp dir or port.
        marks = (self.temp_dir.encode(), f":{self.port}".encode())
        for pid in _pids():
            if any(mark in _cmdline(pid) for mark in marks):
                os.kill(pid, signal.SIGKILL)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != os.getpid()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = RayCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_ray_index_survives_a_killed_worker(
    ray_cluster: RayCluster, video_archive: VideoArchive, tmp_path: Path
) -> None:
    # A longer clip, so that a task is surely running when the worker is killed.
    long = compose_face_clip(tmp_path / "long.mp4", width=320, height=240, fps=15.0, seconds=10.0, faces=3, seed=9)
    out = tmp_path / "index"
    command = [str(BIN / "fiqa-stream"), "index", str(long.path), str(video_archive.folder / "lobby.mp4"),
               str(video_archive.folder / "gate.mp4"), str(video_archive.folder / "zero.mp4"), "--out", str(out),
               "--config", str(video_archive.config), "--ray", ray_cluster.address, "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        running = [pid for pid in _pids() if _cmdline(pid).startswith(TASK_TITLE)]
        if running:
            killed = running[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    stdout, stderr = process.communicate(timeout=300)
    assert killed is not None, "no Ray task was seen running"
    assert process.returncode == 1, stderr  # zero.mp4 is bad; everything else must have finished
    with sqlite3.connect(out / "index.sqlite3") as db:
        found = {Path(p).name: (s, e) for p, s, e in db.execute("SELECT path, status, error FROM videos")}
        per_video = dict(db.execute("SELECT v.path, COUNT(s.id) FROM videos v LEFT JOIN best_shots s "
                                    "ON s.video_id = v.id GROUP BY v.id"))
        crops = [c for (c,) in db.execute("SELECT crop FROM best_shots")]
    assert found["zero.mp4"][0] == "failed"
    for name in ("long.mp4", "lobby.mp4", "gate.mp4"):
        assert found[name] == ("done", None), (name, stderr)
    assert per_video[str(long.path)] == 3
    assert per_video[str(video_archive.folder / "gate.mp4")] == 2
    assert all((out / crop).is_file() for crop in crops)
