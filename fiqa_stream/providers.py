"""Which onnxruntime execution providers an ONNX model (detector or scorer) runs on, for a resolved device."""

from __future__ import annotations

import importlib
import logging
from typing import Any

log = logging.getLogger(__name__)

Provider = str | tuple[str, dict[str, Any]]

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


def onnx_providers(device: str, part: str) -> list[Provider]:
    """CUDA (then CPU) when ``device`` is ``cuda:N`` and onnxruntime has the CUDA provider, else CPU.

    One log line says which runs. When onnxruntime is missing the CPU list comes back
    and the model itself raises the error naming what to install.

    Args:
        device: a resolved device, ``"cpu"`` or ``"cuda:N"``.
        part: what runs, for the log line (``"detector centerface"``, ``"scorer fiqa"``).
    """
    if not device.startswith("cuda"):
        log.info("%s: onnxruntime on the CPU", part)
        return [_CPU]
    try:
        available = importlib.import_module("onnxruntime").get_available_providers()
    except ImportError:
        return [_CPU]
    if _CUDA not in available:
        log.warning(
            "%s: onnxruntime on the CPU although device is %s: this onnxruntime has no %s "
            "(install onnxruntime-gpu to run it on the GPU)", part, device, _CUDA,
        )
        return [_CPU]
    index = int(device.partition(":")[2] or 0)
    log.info("%s: onnxruntime %s on %s", part, _CUDA, device)
    return [(_CUDA, {"device_id": index}), _CPU]


def log_active_providers(session: Any, requested: list[Provider], part: str) -> None:
    """Warn when onnxruntime did not take the first provider asked for (it falls back silently)."""
    wanted = requested[0] if isinstance(requested[0], str) else requested[0][0]
    active = session.get_providers()
    if wanted not in active:
        log.warning("%s: onnxruntime could not use %s; running on %s", part, wanted, ", ".join(active))
