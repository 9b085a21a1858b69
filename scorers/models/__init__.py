"""Learned FIQA architectures (plain torch), registered by name with their input size.

==================  ==============================================  ==========
name                architecture                                    input (px)
==================  ==============================================  ==========
mobilenet_v3_small  MobileNetV3-Small regressor (seed 001)          112
shufflenet_v2       ShuffleNetV2 x0.5 regressor (seed 001)          112
ensemble            mean of the two above (seed 001)                112
mspt                MSPT compact net (seed 000)                     112
student             MobileNetV2 regressor (seed 002 student)        112
teacher             MobileNetV2, final conv, wide head (seed 002)   224
edgenext_xx_small   EdgeNeXt-XX-Small-class regressor (seed 002)    112
==================  ==============================================  ==========

All but ``teacher`` may ship and stay within the challenge limits (0.5 GMACs,
5 M parameters) at their input size; ``complexity`` counts them. ``imagenet``
architectures can start their trunk from ImageNet weights (a recipe stage's
``pretrained``). Every model maps N×3×S×S input (see ``preprocess``) to (N,) scores
in [0, 1]. Importing this package does not import torch; ``build_model`` does.
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
        shipped: whether the model may ship (and so must meet the challenge limits).
        summary: one line for tables.
        imagenet: the trunk can load torchvision's ImageNet MobileNetV2 weights (``load_imagenet``).
    """

    constructor: str
    input_size: int
    shipped: bool
    summary: str
    imagenet: bool = False


_PACKAGE = "fiqa_stream.scorers.models"
#: The side every model is trained and run at: the 112-px ArcFace crop the pipeline aligns
#: faces to, affordable on a 2-core CPU (the seeds ran at 224-352 px on GPUs).
INPUT_SIZE = 112
#: The distillation teacher sees the same crops upscaled: four times the student's computation.
TEACHER_INPUT_SIZE = 224

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
    "student": ModelSpec(
        f"{_PACKAGE}.mobilenet_v2:student", INPUT_SIZE, True, "MobileNetV2 regressor (ImageNet trunk)", imagenet=True
    ),
    "teacher": ModelSpec(
        f"{_PACKAGE}.mobilenet_v2:teacher", TEACHER_INPUT_SIZE, False, "MobileNetV2, wide head, 224 px", imagenet=True
    ),
    "edgenext_xx_small": ModelSpec(
        f"{_PACKAGE}.edgenext:edgenext_xx_small", INPUT_SIZE, True, "EdgeNeXt-XXS-class regressor"
    ),
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
