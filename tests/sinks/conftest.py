"""Shared by the sink specs: a real filesystem small enough to fill, and a writer killed with -9."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB filesystem (tmpfs), where a write beyond it fails with ENOSPC."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a 2 MB tmpfs needs root and mount(8)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a 2 MB tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def publish_then_kill_9() -> Callable[[str, int], None]:
    """Runs a fiqa-stream writer in a child process: ``setup`` (Python, run in this folder so
    that it may import the spec modules) binds ``sink`` and ``event``; the child publishes
    ``event(0)`` .. ``event(count - 1)``, one per call, and is then killed with SIGKILL: no
    close, no flush."""

    def run(setup: str, count: int) -> None:
        code = (f"import sys, time\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom pathlib import Path\n"
                f"{setup}\nfor n in range({count}):\n    sink.publish([event(n)])\n"
                "print('published', flush=True)\ntime.sleep(60)\n")
        writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
        assert writer.stdout is not None
        try:
            assert writer.stdout.readline().strip() == "published"
        finally:
            writer.kill()
            writer.wait(10)
            writer.stdout.close()

    return run
