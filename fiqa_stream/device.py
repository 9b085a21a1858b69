"""Which device a run computes on: ``device: auto | cpu | cuda[:N]`` in the config.

``auto`` takes the first CUDA GPU when torch is installed and sees one, else the CPU.
Asking for ``cuda`` on a machine without one (or without a CUDA build of torch) is a
``ConfigError`` naming the key, never a silent fall back to the CPU.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from pathlib import Path

from fiqa_stream.errors import ConfigError

log = logging.getLogger(__name__)

#: What the ``device`` key accepts.
DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"


def cuda_device_count() -> int:
    """GPUs torch can use here; 0 when torch is missing or is a CPU-only build."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _surely_no_gpu() -> bool:
    # Importing torch costs seconds and hundreds of MB; on Linux a machine whose
    # NVIDIA driver (or WSL's GPU bridge) exposes no device node has no CUDA GPU.
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return False
    return not any(Path(node).exists() for node in ("/dev/nvidiactl", "/dev/dxg"))


def resolve_device(requested: str) -> str:
    """The concrete device (``"cpu"`` or ``"cuda:N"``) for the configured ``device``.

    Args:
        requested: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ConfigError: CUDA was asked for and torch sees no such GPU, or the value is malformed.
    """
    if re.fullmatch(DEVICE_PATTERN, requested) is None:
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    if requested == "auto" and _surely_no_gpu():
        log.info("device: auto resolved to cpu (no NVIDIA device node)")
        return "cpu"
    count = cuda_device_count()
    if requested == "auto":
        device = "cuda:0" if count else "cpu"
        log.info("device: auto resolved to %s", device)
        return device
    index = int(requested.partition(":")[2] or 0)
    if count == 0:
        raise ConfigError(
            f"device: '{requested}' asks for a CUDA GPU, but torch sees none "
            "(no GPU, no driver, or torch is missing or a CPU-only build); use 'auto' or 'cpu'"
        )
    if index >= count:
        raise ConfigError(f"device: '{requested}' asks for GPU {index}, but torch sees {count} (cuda:0..{count - 1})")
    return f"cuda:{index}"
