"""Learned FIQA architectures (plain torch), registered by name with their input size.

==================  ==============================================  ==========
name                architecture                                    input (px)
==================  ==============================================  ==========
mobilenet_v3_small  MobileNetV3-Small regressor (seed 001)          112
shufflenet_v2       ShuffleNetV2 x0.5 regressor (seed 001)          112
ensemble            mean of the two above (seed 001)                112
mspt                MSPT compact net (seed 000)                     112
student             EdgeNeXt-XX-Small-class student (seed 002)      112
teacher             wide EdgeNeXt/ConvNeXt teacher (seed 002)       112
==================  ==============================================  ==========

All but ``teacher`` are shipped and stay within the challenge limits (0.5 GMACs,
5 M parameters) at their input size; ``complexity`` counts them. Every model maps
N×3×S×S input (see ``preprocess``) to (N,) scores in [0, 1]. Importing this package
does not import torch; ``build_model`` does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fiqa_stream.errors import ConfigError
from fiqa_stream.registry import did_you_mean

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture.

    Attributes:
        constructor: "module:callable" building the untrained model with no arguments.
        input_size: side of the square input the model is trained and run at.
        shipped: whether the model ships (and so must meet the challenge limits).
        summary: one line for tables.
    """

    constructor: str
    input_size: int
    shipped: bool
    summary: str


_PACKAGE = "fiqa_stream.scorers.models"
#: The side every model is trained and run at: the 112-px ArcFace crop the pipeline aligns
#: faces to, affordable on a 2-core CPU (the seeds ran at 224-352 px on GPUs).
INPUT_SIZE = 112

MODELS: dict[str, ModelSpec] = {
    "mobilenet_v3_small": ModelSpec(
        f"{_PACKAGE}.mobilenet_v3_small:MobileNetV3SmallRegressor", INPUT_SIZE, True, "MobileNetV3-Small regressor"
    ),
    "shufflenet_v2": ModelSpec(
        f"{_PACKAGE}.shufflenet_v2:ShuffleNetV2Regressor", INPUT_SIZE, True, "ShuffleNetV2 x0.5 regressor"
    ),
    "ensemble": ModelSpec(
        f"{_PACKAGE}.ensemble:AveragingEnsemble", INPUT_SIZE, True, "MobileNetV3-S + ShuffleNetV2 mean"
    ),
    "mspt": ModelSpec(f"{_PACKAGE}.mspt:MSPTNet", INPUT_SIZE, True, "MSPT compact net"),
    "student": ModelSpec(f"{_PACKAGE}.student:student", INPUT_SIZE, True, "EdgeNeXt-XXS-class student"),
    "teacher": ModelSpec(f"{_PACKAGE}.teacher:teacher", INPUT_SIZE, False, "wide EdgeNeXt teacher"),
}

#: The challenge's efficiency limits for a shipped model.
MAX_GMACS = 0.5
MAX_PARAMS = 5_000_000


def model_spec(name: str) -> ModelSpec:
    """The registered spec of ``name``.

    Raises:
        ConfigError: ``name`` is not registered (with a did-you-mean hint).
    """
    try:
        return MODELS[name]
    except KeyError:
        known = sorted(MODELS)
        raise ConfigError(f"unknown model '{name}'{did_you_mean(name, known)}; known: {', '.join(known)}") from None


def build_model(name: str) -> nn.Module:
    """A fresh, untrained instance of the model registered as ``name``.

    Raises:
        ConfigError: ``name`` is not registered.
        DependencyError: torch is not installed.
    """
    spec = model_spec(name)
    module_name, _, attribute = spec.constructor.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        from fiqa_stream.errors import DependencyError

        raise DependencyError.missing("torch", "train", f"the '{name}' model") from e
    model: nn.Module = getattr(module, attribute)()
    return model


__all__ = ["MAX_GMACS", "MAX_PARAMS", "MODELS", "ModelSpec", "build_model", "model_spec"]
