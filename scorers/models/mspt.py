"""The MSPT network (seed 000): a compact MobileNetV3-Small-sized regressor for progressive training.

The paper gives the budget (about 1.5 M parameters, MobileNetV3-Small-sized) and the
point of the design: a small net that keeps learning finer quality cues as the input
resolution grows over three training stages. This network is a MobileNetV3-Small trunk
whose head reads all four stages, not just the last: each stage map is pooled by its
mean and its standard deviation. The early, high-resolution stages carry the
fine-grained cues (noise, blocking, lost detail) that matter more at the later,
larger stages of training; the deviation pooling keeps their local contrast, which a
mean alone averages away. Everything is convolutional up to the pooling, so one set of
weights serves every stage's resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from fiqa_stream.scorers.models.layers import ScoreHead, init_weights
from fiqa_stream.scorers.models.mobilenet_v3_small import LAST_CHANNELS, SMALL_BLOCKS, MobileNetV3SmallTrunk

#: Channels of the four stage outputs of the trunk (strides 4, 8, 16, 32).
STAGE_CHANNELS = (SMALL_BLOCKS[0].out, SMALL_BLOCKS[2].out, SMALL_BLOCKS[7].out, LAST_CHANNELS)


def mean_std_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) to (N, 2C): per-channel spatial mean and standard deviation."""
    flat = x.flatten(2)
    return torch.cat((flat.mean(-1), flat.std(-1, unbiased=False)), dim=1)


class MSPTNet(nn.Module):
    """MobileNetV3-Small trunk with multi-scale mean-and-deviation pooling and a sigmoid score.

    Input: N×3×H×W RGB, ImageNet-normalised (see ``preprocess``); any H, W ≥ 32.
    Output: (N,) scores in [0, 1].

    Args:
        hidden: width of the head's hidden layer.
        dropout: in the head.
    """

    def __init__(self, hidden: int = 448, dropout: float = 0.2) -> None:
        super().__init__()
        self.trunk = MobileNetV3SmallTrunk()
        self.head = ScoreHead(2 * sum(STAGE_CHANNELS), hidden, nn.Hardswish, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [mean_std_pool(stage) for stage in self.trunk.forward_stages(x)]
        return self.head(torch.cat(pooled, dim=1))
