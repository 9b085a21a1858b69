"""A FIQA model of the user's own, run by the fiqa scorer from its ONNX file.

``fiqa-stream train`` writes ``.safetensors`` and ``fiqa-stream export`` turns them into
ONNX; the scorer's ``model`` takes that file's path in place of a shipped name. The
fusion weights fitted with it are read from ``<stem>.fusion.json`` beside it (what
``fiqa-stream eval --fit-fusion`` writes), as a shipped model's are. Unlike a shipped
model the file is not pinned by a digest: whoever names it vouches for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiqa_stream.errors import ModelError
from fiqa_stream.scorers.weights import SHIPPED, ShippedModel, read_fusion_weights

#: The suffix ``fiqa-stream export --int8`` files conventionally carry before ``.onnx``.
_INT8 = ".int8"


@dataclass(frozen=True)
class ModelFile:
    """An ONNX model file (input N×3×S×S float32, output N scores) named by its path.

    Its input side is read from the graph by the scorer's own session (``input_side``).
    """

    path: Path

    @property
    def int8_onnx_sha256(self) -> None:
        """Never an integer version beside it: the file runs as it is (an int8 export included)."""
        return None

    @property
    def version(self) -> str:
        """The name events carry: the file's stem, without a trailing ``.int8``."""
        return self.path.stem.removesuffix(_INT8)

    @property
    def onnx(self) -> Path:
        """The file, after checking it is there.

        Raises:
            ModelError: there is no such file.
        """
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX model file")
        return self.path

    def fusion_weights(self) -> dict[str, float] | None:
        """The fusion weights in ``<version>.fusion.json`` beside the file, or None when there is none.

        Raises:
            ModelError: that file holds no ``weights`` mapping of numbers.
        """
        return read_fusion_weights(self.path.with_name(f"{self.version}.fusion.json"))


def input_side(session: Any, path: Path) -> int:
    """The side S of the crops an onnxruntime ``session`` of ``path`` takes as its N×3×S×S input.

    Raises:
        ModelError: its input is not N×3×S×S.
    """
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int) or shape[2] != shape[3]:
        raise ModelError(f"{path}: input is {shape}, not N×3×S×S (write it with `fiqa-stream export`)")
    return int(shape[2])


def scorer_model(model: str | Path) -> ShippedModel | ModelFile:
    """The model a ``FiqaScorerConfig.model`` names: a shipped one by name, else an ONNX file by path."""
    if isinstance(model, str) and model in SHIPPED:
        return SHIPPED[model]
    return ModelFile(Path(model))
