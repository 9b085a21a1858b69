"""The FIQA weights the project trains and ships, each as safetensors (torch) and ONNX (pipeline).

Every file is pinned by its SHA-256 below and checked when it is opened, so a
corrupt or swapped file fails loudly instead of scoring wrongly. The version is the
name events carry (``Quality``'s ``model``); a retrained model gets a new version
and new digests. How they were trained and how well they do: ``MODEL_CARD.md``.
Importing this module needs neither torch nor onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fiqa_stream.errors import ConfigError, ModelError
from fiqa_stream.registry import did_you_mean

if TYPE_CHECKING:
    from torch import nn

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model.

    Attributes:
        version: the versioned name, also the files' stem (``fiqa-student-2``).
        architecture: the registered architecture (``fiqa_stream.scorers.models.MODELS``).
        input_size: the side of the aligned face crop it was trained and runs at.
        safetensors_sha256: digest of ``<version>.safetensors``.
        onnx_sha256: digest of ``<version>.onnx``.
        int8_onnx_sha256: digest of ``<version>.int8.onnx``, the 8-bit integer model for
            CPUs (``scorers/models/quantize.py``); None when none is shipped.
    """

    version: str
    architecture: str
    input_size: int
    safetensors_sha256: str
    onnx_sha256: str
    int8_onnx_sha256: str | None = None

    @property
    def safetensors(self) -> Path:
        """The verified safetensors file (see ``verified``)."""
        return verified(FOLDER / f"{self.version}.safetensors", self.safetensors_sha256)

    @property
    def onnx(self) -> Path:
        """The verified ONNX file (see ``verified``)."""
        return verified(FOLDER / f"{self.version}.onnx", self.onnx_sha256)

    @property
    def int8_onnx(self) -> Path:
        """The verified 8-bit integer ONNX file (see ``verified``).

        Raises:
            ModelError: none is shipped for this model, or the file is missing or corrupt.
        """
        if self.int8_onnx_sha256 is None:
            raise ModelError(f"{self.version} ships no int8 model")
        return verified(FOLDER / f"{self.version}.int8.onnx", self.int8_onnx_sha256)

    def fusion_weights(self) -> dict[str, float] | None:
        """The fusion weights fitted with this model (``<version>.fusion.json``), or None when none were fitted.

        Raises:
            ModelError: the file exists but holds no ``weights`` mapping of numbers.
        """
        return read_fusion_weights(FOLDER / f"{self.version}.fusion.json")


def read_fusion_weights(path: Path) -> dict[str, float] | None:
    """The ``weights`` of a fusion-weights file (``training/fusion.write_fusion``), or None when there is none.

    Raises:
        ModelError: the file exists but holds no ``weights`` mapping of numbers.
    """
    if not path.is_file():
        return None
    try:
        weights = json.loads(path.read_text(encoding="utf-8"))["weights"]
        return {str(k): float(v) for k, v in weights.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelError(f"{path}: not a fusion-weights file ({e})") from e


SHIPPED: dict[str, ShippedModel] = {
    "student": ShippedModel(
        "fiqa-student-2", "student", 112,
        "5f1d6dd06e87443702ef388aaa0e817ecedac0060b02ecffb3e26dfc43c37d20",
        "7359cbbaf6915833cf3fd5ae5d0fdbe9750a80c983d1df8f1722d84764857e58",
    ),
    # The seed-002 student distilled on recognition-utility labels, then taught on labels pooled over people
    # (one-photo people given a virtual second photo), on ranking pairs and on
    # mirror consistency (recipe student-utility-mirror, seed 3, on the 37 training identities of 59).
    "student-utility": ShippedModel(
        "fiqa-student-utility-9", "student", 112,
        "8079548c6333126865f92fac394e97245affe137a79b46ca580a86cfdc32b881",
        "521e8c047ea5efbaa69130c5cc0908ed09c71f5551b1a15b9514eefc2831a6dc",
        "ca123f6fca789216186eb314e44cbebe736f5949bb69239edeb9ec4b2d5c6b78",
    ),
    # Seed 000's recipe on utility labels, with crops student-utility pseudo-labelled (recipe mspt-utility).
    "mspt-utility": ShippedModel(
        "fiqa-mspt-utility-1", "mspt", 112,
        "fc1fff9792f5d35db13f1b75dc36cd2d4b552aea8478268e854e4793dcd110c1",
        "5ae550c1bf94e3adfe350e576b42b229211b90b3d4379858272fbba5726fa419",
    ),
    # Seed 001's recipe on utility labels, with crops student-utility pseudo-labelled (recipe ensemble-utility).
    "ensemble-utility": ShippedModel(
        "fiqa-ensemble-utility-1", "ensemble", 112,
        "fa9b24da834e200eeade95c2f641a3a739b888a54989ed96d86e35d745ac17e8",
        "c7a8856d868a3d35e4179f8a8c33ae9ff60780cdc7ce58ee2b5c63c147b77c07",
    ),
    "ensemble": ShippedModel(
        "fiqa-ensemble-1", "ensemble", 112,
        "e342930fab269331387c8d6124cafaad1dd793a5150ba1e6370670716864634e",
        "23470a9f68f533002955377ee7c14023a5ecb325e4efad0c19f92371dfe87f2e",
    ),
    "mspt": ShippedModel(
        "fiqa-mspt-1", "mspt", 112,
        "c81e078eb71635a29c4837616eff51ef7269ac50595e4deca8892cc569926322",
        "903d37fb7873a3976fd2281eee374b5d7a35c8d69f1422bf4442e48c7f575eb8",
    ),
}


def shipped(name: str) -> ShippedModel:
    """The shipped model ``name``.

    Raises:
        ConfigError: no such shipped model (with a did-you-mean hint).
    """
    try:
        return SHIPPED[name]
    except KeyError:
        known = sorted(SHIPPED)
        hint = did_you_mean(name, known)
        raise ConfigError(f"no shipped model '{name}'{hint}; shipped: {', '.join(known)}") from None


def verified(path: Path, expected_sha256: str) -> Path:
    """``path`` after checking that it exists and has the pinned digest.

    Raises:
        ModelError: the file is missing or its digest differs.
    """
    if not path.is_file():
        raise ModelError(f"{path}: shipped model file is missing (a broken install? reinstall fiqa-stream)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected_sha256:
        raise ModelError(f"{path}: SHA-256 {digest} differs from the pinned {expected_sha256}; the file is corrupt")
    return path


def load_shipped(name: str) -> nn.Module:
    """The shipped model ``name`` as a torch module in eval mode (needs the ``train`` extra).

    Raises:
        ConfigError: no such shipped model.
        ModelError: a missing or corrupt file.
    """
    from fiqa_stream.scorers.models.io import load_weights

    model, _ = load_weights(shipped(name).safetensors)
    return model
