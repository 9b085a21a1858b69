"""Seed 002's student architecture: an EdgeNeXt-XX-Small-class hybrid regressor in plain torch.

EdgeNeXt (Maaz et al., 2022) mixes convolutional encoders, whose depthwise kernels
grow 3 → 5 → 7 → 9 over the four stages, with one split depth-wise transposed
attention (SDTA) block closing stages 2-4. SDTA splits the channels into groups run
through a hierarchy of depthwise 3×3 convolutions (growing receptive field at no
cost) and then attends across *channels* (a C×C map per head, XCA), so its cost is
linear in the number of pixels. The XX-Small widths are 24/48/88/168 with depths
2/2/6/2; the classifier is replaced by seed 002's two-layer head, closed by a sigmoid,
reading every stage's mean and standard deviation (as the MSPT net does), so the
fine-grained cues of the early, high-resolution stages reach the score.

Trained from scratch (no ImageNet weights exist offline for it) on the five identities
of the offline degradation set it generalises worse to new faces than the
ImageNet-initialised MobileNetV2 (see ``mobilenet_v2``), so the distillation recipe's
shipped student is that one; this architecture stays selectable in a recipe
(``student: {model: edgenext_xx_small, ...}``) for training on real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fiqa_stream.scorers.models.layers import ScoreHead, init_weights
from fiqa_stream.scorers.models.mspt import mean_std_pool


@dataclass(frozen=True)
class EdgeNeXtSpec:
    """The shape of an EdgeNeXt-style network.

    Attributes:
        dims: channels of the four stages.
        depths: blocks per stage.
        kernels: depthwise kernel of each stage's convolutional encoders.
        attention_blocks: how many SDTA blocks close each stage.
        heads: attention heads of the SDTA blocks.
        split_scales: channel groups of each stage's SDTA blocks.
        head_hidden: hidden width of the score head.
        expansion: MLP expansion in every block.
    """

    dims: tuple[int, int, int, int] = (24, 48, 88, 168)
    depths: tuple[int, int, int, int] = (2, 2, 6, 2)
    kernels: tuple[int, int, int, int] = (3, 5, 7, 9)
    attention_blocks: tuple[int, int, int, int] = (0, 1, 1, 1)
    heads: int = 4
    split_scales: tuple[int, int, int, int] = (2, 2, 3, 4)
    head_hidden: int = 128
    expansion: int = 4


#: EdgeNeXt-XX-Small, the student of seed 002.
XX_SMALL = EdgeNeXtSpec()
#: Layer-scale start: residual branches begin almost silent, so deep stacks train stably.
LAYER_SCALE_INIT = 1e-6


class PointwiseMLP(nn.Module):
    """LayerNorm, expand, GELU, project, over the channels of an N×H×W×C (channels-last) map."""

    def __init__(self, dim: int, expansion: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, expansion * dim), nn.GELU(), nn.Linear(expansion * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * self.mlp(self.norm(x))


class ConvEncoder(nn.Module):
    """Depthwise k×k convolution then a pointwise MLP, with a residual (ConvNeXt block)."""

    def __init__(self, dim: int, kernel: int, expansion: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.mlp = PointwiseMLP(dim, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        return x + self.mlp(y).permute(0, 3, 1, 2)


class ChannelAttention(nn.Module):
    """Transposed (cross-covariance) attention: each head mixes its channels by a C×C map.

    Queries and keys are L2-normalised along the pixels, so the map is a cosine
    similarity scaled by a learned per-head temperature.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"channels {dim} must divide into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L, C) tokens to (N, L, C)."""
        n, length, channels = tokens.shape
        qkv = self.qkv(tokens).reshape(n, length, 3, self.heads, channels // self.heads).permute(2, 0, 3, 4, 1)
        q, k, v = nn.functional.normalize(qkv[0], dim=-1), nn.functional.normalize(qkv[1], dim=-1), qkv[2]
        attention = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        mixed = (attention @ v).permute(0, 3, 1, 2).reshape(n, length, channels)
        return self.proj(mixed)


class SDTABlock(nn.Module):
    """Split depth-wise transposed attention: hierarchical depthwise convs, channel attention, MLP."""

    def __init__(self, dim: int, heads: int, scales: int, expansion: int) -> None:
        super().__init__()
        self.width = -(-dim // scales)
        groups = -(-dim // self.width)
        self.convs = nn.ModuleList(
            nn.Conv2d(self.width, self.width, 3, padding=1, groups=self.width) for _ in range(groups - 1)
        )
        self.attention_norm = nn.LayerNorm(dim, eps=1e-6)
        self.attention = ChannelAttention(dim, heads)
        self.attention_gamma = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))
        self.mlp = PointwiseMLP(dim, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = x.split(self.width, dim=1)
        outputs = []
        carried = chunks[0]
        for i, conv in enumerate(self.convs):
            carried = conv(chunks[i] if i == 0 else carried + chunks[i])
            outputs.append(carried)
        outputs.append(chunks[-1])
        y = torch.cat(outputs, dim=1)
        n, c, h, w = y.shape
        tokens = y.flatten(2).transpose(1, 2)
        tokens = tokens + self.attention_gamma * self.attention(self.attention_norm(tokens))
        tokens = tokens + self.mlp(tokens)
        return x + tokens.transpose(1, 2).reshape(n, c, h, w)


class EdgeNeXtRegressor(nn.Module):
    """An EdgeNeXt-style network with a sigmoid-bounded score head.

    Input: N×3×H×W RGB, ImageNet-normalised (see ``preprocess``); H and W multiples of 32
    keep every stage's grid whole (others are floored by the strided layers).
    Output: (N,) scores in [0, 1].

    Args:
        spec: stage widths, depths, kernels and attention layout; EdgeNeXt-XX-Small by default.
    """

    def __init__(self, spec: EdgeNeXtSpec = XX_SMALL) -> None:
        super().__init__()
        dims = spec.dims
        # Batch norm, not EdgeNeXt's per-pixel LayerNorm, on the trunk: normalising each
        # pixel's channel vector would erase the local signal energy that noise, contrast
        # and exposure change, which is what a quality model must read.
        self.downsample = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), nn.BatchNorm2d(dims[0]))]
            + [nn.Sequential(nn.BatchNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, 2))
               for i in range(1, 4)]
        )
        stages: list[nn.Module] = []
        for i in range(4):
            convs = spec.depths[i] - spec.attention_blocks[i]
            blocks: list[nn.Module] = [ConvEncoder(dims[i], spec.kernels[i], spec.expansion) for _ in range(convs)]
            blocks += [SDTABlock(dims[i], spec.heads, spec.split_scales[i], spec.expansion)
                       for _ in range(spec.attention_blocks[i])]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = ScoreHead(2 * sum(dims), spec.head_hidden, nn.GELU, dropout=0.0)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        for downsample, stage in zip(self.downsample, self.stages, strict=True):
            x = stage(downsample(x))
            pooled.append(mean_std_pool(x))
        return self.head(torch.cat(pooled, dim=1))


def edgenext_xx_small() -> EdgeNeXtRegressor:
    """EdgeNeXt-XX-Small with a score head."""
    return EdgeNeXtRegressor(XX_SMALL)
