"""Building blocks shared by the architectures: conv-BN-activation, squeeze-excite, the score head."""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, never more than 10 % below it (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNAct(nn.Sequential):
    """A bias-free convolution, batch norm and an optional activation, padded to keep the grid."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        padding = (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention from globally pooled features, gated by a hard sigmoid (MobileNetV3)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.expand(torch.relu(self.reduce(scale)))
        return x * nn.functional.hardsigmoid(scale)


class ScoreHead(nn.Module):
    """Pooled features to one quality score in [0, 1]: an MLP closed by a sigmoid.

    The sigmoid keeps scores on the labels' scale whatever the features; its input bias
    starts at 0, so an untrained model says 0.5.
    """

    def __init__(
        self, in_features: int, hidden: int, activation: type[nn.Module] = nn.Hardswish, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden), activation(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, in_features) features to (N,) scores."""
        return torch.sigmoid(self.mlp(features)).squeeze(-1)


def init_weights(module: nn.Module) -> None:
    """He-normal convolutions, unit norms, small linears and zero biases (torchvision's MobileNet init)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d | nn.LayerNorm | nn.GroupNorm):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
