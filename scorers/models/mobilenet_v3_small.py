"""MobileNetV3-Small (Howard et al., 2019) as a quality regressor, in plain torch.

The trunk follows the paper's Table 2 (and torchvision's layout) at width 1.0; the
classifier is replaced by the 1024-wide MLP of the paper closed by a sigmoid, so the
model answers one score in [0, 1] per image (seed 001's regressor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fiqa_stream.scorers.models.layers import ConvBNAct, ScoreHead, SqueezeExcite, init_weights, make_divisible


@dataclass(frozen=True)
class BlockSpec:
    """One inverted residual: kernel, expanded width, output width, SE, hard-swish, stride."""

    kernel: int
    expanded: int
    out: int
    se: bool
    hardswish: bool
    stride: int


#: The paper's Table 2 (MobileNetV3-Small, width 1.0).
SMALL_BLOCKS = (
    BlockSpec(3, 16, 16, True, False, 2),
    BlockSpec(3, 72, 24, False, False, 2),
    BlockSpec(3, 88, 24, False, False, 1),
    BlockSpec(5, 96, 40, True, True, 2),
    BlockSpec(5, 240, 40, True, True, 1),
    BlockSpec(5, 240, 40, True, True, 1),
    BlockSpec(5, 120, 48, True, True, 1),
    BlockSpec(5, 144, 48, True, True, 1),
    BlockSpec(5, 288, 96, True, True, 2),
    BlockSpec(5, 576, 96, True, True, 1),
    BlockSpec(5, 576, 96, True, True, 1),
)
STEM_CHANNELS = 16
LAST_CHANNELS = 576


class InvertedResidual(nn.Module):
    """Expand (1×1), depthwise, optional squeeze-excite, project (1×1); residual when shapes match."""

    def __init__(self, in_channels: int, spec: BlockSpec) -> None:
        super().__init__()
        act: type[nn.Module] = nn.Hardswish if spec.hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if spec.expanded != in_channels:
            layers.append(ConvBNAct(in_channels, spec.expanded, 1, activation=act))
        layers.append(ConvBNAct(spec.expanded, spec.expanded, spec.kernel, spec.stride, spec.expanded, act))
        if spec.se:
            layers.append(SqueezeExcite(spec.expanded, make_divisible(spec.expanded / 4)))
        layers.append(ConvBNAct(spec.expanded, spec.out, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and in_channels == spec.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3SmallTrunk(nn.Module):
    """The convolutional part: stem, the 11 inverted residuals and the last 1×1 conv (576 channels).

    ``stages`` exposes the feature maps at strides 4, 8, 16 and 32 for multi-scale heads.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, 2, activation=nn.Hardswish)
        blocks: list[nn.Module] = []
        channels = STEM_CHANNELS
        for spec in SMALL_BLOCKS:
            blocks.append(InvertedResidual(channels, spec))
            channels = spec.out
        # Stage boundaries fall after each block that precedes a stride-2 block.
        self.stages = nn.ModuleList([nn.Sequential(*blocks[:1]), nn.Sequential(*blocks[1:3]),
                                     nn.Sequential(*blocks[3:8]), nn.Sequential(*blocks[8:])])
        self.last = ConvBNAct(channels, LAST_CHANNELS, 1, activation=nn.Hardswish)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps after each stage; the last one after the final 1×1 conv."""
        outputs = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        outputs[-1] = self.last(outputs[-1])
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1]


class MobileNetV3SmallRegressor(nn.Module):
    """MobileNetV3-Small with a sigmoid-bounded score head.

    Input: N×3×H×W RGB, ImageNet-normalised (see ``preprocess``); any H, W ≥ 32.
    Output: (N,) scores in [0, 1].
    """

    def __init__(self, hidden: int = 1024, dropout: float = 0.2) -> None:
        super().__init__()
        self.trunk = MobileNetV3SmallTrunk()
        self.head = ScoreHead(LAST_CHANNELS, hidden, nn.Hardswish, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x).mean((2, 3)))
