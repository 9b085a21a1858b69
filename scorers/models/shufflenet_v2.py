"""ShuffleNetV2 (Ma et al., 2018) as a quality regressor, in plain torch.

Widths follow the paper's Table 5 for x0.5 and x1.0; the 1000-way classifier is
replaced by one linear output closed by a sigmoid (seed 001's second regressor).
x0.5 is the default: with MobileNetV3-Small it gives an ensemble of about 1.9 M
parameters, near seed 001's reported 2.09 M (x1.0 would make 2.8 M, over the 10 MB
budget of a shipped fp32 weights file).
"""

from __future__ import annotations

import torch
from torch import nn

from fiqa_stream.scorers.models.layers import ConvBNAct, init_weights

#: Output channels of the stem, the three stages and the last 1×1 conv, per width.
WIDTHS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
}
REPEATS = (4, 8, 4)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups so information crosses between branches."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """The ShuffleNetV2 unit: channel split (stride 1) or two strided branches (stride 2), then shuffle."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.stride = stride
        branch = out_channels // 2
        if stride == 2:
            self.shortcut: nn.Module = nn.Sequential(
                ConvBNAct(in_channels, in_channels, 3, 2, in_channels, None),
                ConvBNAct(in_channels, branch, 1),
            )
            main_in = in_channels
        else:
            self.shortcut = nn.Identity()
            main_in = branch
        self.main = nn.Sequential(
            ConvBNAct(main_in, branch, 1),
            ConvBNAct(branch, branch, 3, stride, branch, None),
            ConvBNAct(branch, branch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, x = x.chunk(2, dim=1)
            out = torch.cat((kept, self.main(x)), dim=1)
        else:
            out = torch.cat((self.shortcut(x), self.main(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2Regressor(nn.Module):
    """ShuffleNetV2 with a sigmoid-bounded linear score.

    Input: N×3×H×W RGB, ImageNet-normalised (see ``preprocess``); any H, W ≥ 32.
    Output: (N,) scores in [0, 1].

    Args:
        width: 0.5 or 1.0 (the paper's x0.5 and x1.0).
        dropout: before the final linear layer.
    """

    def __init__(self, width: float = 0.5, dropout: float = 0.2) -> None:
        super().__init__()
        if width not in WIDTHS:
            raise ValueError(f"width must be one of {sorted(WIDTHS)}, got {width}")
        stem, *stage_channels, last = WIDTHS[width]
        self.stem = nn.Sequential(ConvBNAct(3, stem, 3, 2), nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = []
        channels = stem
        for out, repeats in zip(stage_channels, REPEATS, strict=True):
            units = [ShuffleUnit(channels, out, 2)] + [ShuffleUnit(out, out, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.last = ConvBNAct(channels, last, 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, 1))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.last(self.stages(self.stem(x))).mean((2, 3))
        return torch.sigmoid(self.head(features)).squeeze(-1)
