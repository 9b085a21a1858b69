"""Shared by the benchmark scripts: machine description, BENCHMARKS.md sections, local servers."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
#: The Debian Python with GStreamer's introspection bindings, which the RTSP test server needs.
SYSTEM_PYTHON = "/usr/bin/python3"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, numpy {_version('numpy')}, av {_version('av')}, "
        f"opencv {_version('opencv-python-headless')}, yuface {_version('yuface')}"
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between this benchmark's markers in BENCHMARKS.md."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Other work on the machine skews every figure: the load average says how busy it was.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    block = f"{begin}\n_Measured {stamp} on: {machine()}; load average {load}_\n\n{body.strip()}\n{end}"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text.rstrip()}\n\n{block}\n"
    BENCHMARKS.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS.write_text(text)


def revision_python(revision: str) -> Path:
    """A Python that imports fiqa_stream as it was at ``revision``, for side-by-side runs.

    The revision is checked out (``git worktree``) under ``~/.cache/fiqa-stream-bench`` and
    installed editable, without dependencies, into a virtual environment that sees this
    environment's packages; both are kept for the next run.

    Raises:
        RuntimeError: that Python imports fiqa_stream from anywhere but the checkout.
    """
    import sysconfig

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{revision}^{{commit}}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    home = Path.home() / ".cache" / "fiqa-stream-bench" / commit[:12]
    tree, env = home / "tree", home / "venv"
    python = env / "bin" / "python"
    if not python.exists():
        home.mkdir(parents=True, exist_ok=True)
        if not tree.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                           check=True, capture_output=True)
        # No pip or setuptools of its own: those of this environment (newer) build the install.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    theirs = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    # Plain path lines, the checkout first: where this environment holds fiqa_stream itself
    # (a plain install, as scripts/test.sh makes), the editable install's finder, which
    # Python asks only after sys.path, would never be reached.
    (Path(theirs) / "base-packages.pth").write_text(f"{tree}\n{sysconfig.get_paths()['purelib']}\n")
    if not any(Path(theirs).glob("fiqa_stream-*.dist-info")):
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "-e", str(tree)], check=True)
    # Run away from any checkout: ``-c`` puts the working folder first on sys.path.
    imported = subprocess.run([str(python), "-c", "import fiqa_stream; print(fiqa_stream.__file__)"],
                              check=True, capture_output=True, text=True, cwd=home).stdout.strip()
    if not Path(imported).is_relative_to(tree):
        raise RuntimeError(f"the Python for {revision} imports fiqa_stream from {imported}, not from {tree}")
    return python


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_rtsp(clips: list[Path]) -> tuple[subprocess.Popen, list[str]]:
    """A local RTSP server with camera ``n`` serving ``clips[n]`` in a loop, and the cameras' URLs.

    Exits the benchmark with the packages to install when the server does not start.
    """
    port = free_port()
    mounts = [f"/cam{n}" for n in range(len(clips))]
    server = subprocess.Popen(
        [SYSTEM_PYTHON, str(ROOT / "scripts" / "rtsp_test_server.py"), "--port", str(port),
         *[arg for mount in mounts for arg in ("--mount", mount)], *map(str, clips)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    if server.stdout is None or server.stdout.readline().strip() != "ready":
        server.kill()
        sys.exit("the RTSP server did not start (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi)")
    return server, [f"rtsp://127.0.0.1:{port}{mount}" for mount in mounts]


def stop_rtsp(server: subprocess.Popen) -> None:
    """Stops a server of ``serve_rtsp`` and waits for it."""
    server.kill()
    server.wait()
    if server.stdout:
        server.stdout.close()
