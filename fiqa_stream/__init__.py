"""fiqa-stream: the best shot of every face in live cameras and video files."""

import os
from pathlib import Path

__version__ = "0.1.0"

# YuNet runs on OpenMP, whose idle threads spin by default. The pipeline's decode, sink
# and onnxruntime threads then fight them for the cores: on a busy 2-core machine the
# whole pipeline ran 12x slower (bench/pipeline.py, 2.1 vs 24.7 frames/s). OpenMP reads
# this once, when it loads, so it is set before any detector is imported; an explicit
# setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Installed, the sub-packages (stream, detectors, scorers, sinks) sit inside this one.
# In a source checkout they are the checkout's top-level folders, which pyproject maps
# in; when the checkout itself is first on sys.path (`python -m` from its root, or Ray
# workers started there), this folder is imported as the package, so look beside it too.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "stream" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # type: ignore[name-defined]  # noqa: F821
