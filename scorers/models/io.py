"""Model weights on disk: safetensors with their metadata, and ONNX export.

A weights file holds the state dict of one registered architecture and, in its
safetensors metadata, ``architecture`` (the registry name), ``input_size`` and
whatever else the writer adds (``version``, ``recipe``, metrics as JSON). Nothing is
unpickled: safetensors stores plain tensors, so loading runs no code from the file.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fiqa_stream.errors import ModelError
from fiqa_stream.scorers.models import build_model, model_spec

ONNX_INPUT, ONNX_OUTPUT = "input", "score"
ONNX_OPSET = 17


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(model: nn.Module, path: Path, architecture: str, input_size: int, **metadata: str) -> Path:
    """Write ``model``'s weights and metadata as safetensors (contiguous fp32 tensors)."""
    model_spec(architecture)
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"architecture": architecture, "input_size": str(input_size), **metadata})
    return path


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a safetensors weights file.

    Raises:
        ModelError: the file is missing or not safetensors.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (OSError, SafetensorError) as e:
        raise ModelError(f"{path}: cannot read model weights: {e}") from e


def load_weights(path: Path, expected_sha256: str | None = None) -> tuple[nn.Module, dict[str, str]]:
    """The model stored in ``path`` (eval mode, CPU) and its metadata.

    Args:
        path: a safetensors file written by ``save_weights``.
        expected_sha256: when given, the file must have this digest.

    Raises:
        ModelError: missing, corrupt, of another digest, or not matching its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model weights not found")
    if expected_sha256 is not None and (actual := sha256(path)) != expected_sha256:
        raise ModelError(f"{path}: SHA-256 {actual} differs from the expected {expected_sha256}; the file is corrupt")
    metadata = read_metadata(path)
    if "architecture" not in metadata or "input_size" not in metadata:
        raise ModelError(f"{path}: no architecture/input_size metadata; not written by fiqa-stream")
    model = build_model(metadata["architecture"])
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except (RuntimeError, SafetensorError) as e:
        raise ModelError(f"{path}: weights do not fit architecture '{metadata['architecture']}': {e}") from e
    return model.eval(), metadata


def export_onnx(model: nn.Module, input_size: int, path: Path) -> Path:
    """Export ``model`` to ONNX with a dynamic batch: ``input`` N×3×S×S float32 → ``score`` (N,)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu")
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); it exports these plain CNNs exactly.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, input_size, input_size),),
            str(path),
            dynamo=False,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
            opset_version=ONNX_OPSET,
        )
    return path
