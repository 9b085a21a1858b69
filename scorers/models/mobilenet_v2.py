"""MobileNetV2 (Sandler et al., 2018) as a quality regressor that can start from ImageNet weights.

The trunk is torchvision's MobileNetV2 at width 1.0, module for module (``features.*``
keys), so the ImageNet weights found offline (see ``training.pretrained``) load into it
unchanged. The classifier is replaced by the MSPT net's head: the mean and standard
deviation of four stage outputs (strides 4, 8, 16 and 32), so the fine, high-resolution
cues of blur, noise and blocking reach the score, closed by a sigmoid. The student
leaves out the trunk's final 1×1 convolution to 1280 channels (0.4 M parameters, which
would take its weights file past 10 MB) and pools the stride-32 block itself.

Why this net for the distillation recipe (seed 002): with five training identities, a
network trained from scratch learns the faces as much as their quality and misjudges a
new face (the EdgeNeXt-XX-Small student reached 0.77 SRCC on held-out faces, its
9 M-parameter EdgeNeXt teacher 0.80); ImageNet features carry over to unseen faces. At
112 px the student costs 2.05 M parameters and 0.075 GMACs, within the challenge
limits: an "equally efficient design" in the issue's words. The teacher is the whole
trunk with a wider head, run at 224 px: four times the computation, and what it sees
of a face at that scale is closer to the ImageNet statistics its features were learnt on.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fiqa_stream.scorers.models.layers import ConvBNAct, ScoreHead, init_weights
from fiqa_stream.scorers.models.mspt import mean_std_pool

#: The paper's Table 2: (expansion, output channels, repeats, first stride) per block group.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS, LAST_CHANNELS = 32, 1280
#: Indices into ``features`` of the last block at strides 4, 8 and 16, and their channels; the head
#: pools these and the trunk's last layer (the stride-32 block, or the final convolution after it).
STAGE_TAPS = (3, 6, 13)
STAGE_CHANNELS = (24, 32, 96)


class InvertedResidual(nn.Module):
    """Expand (1×1), depthwise 3×3, project (1×1, linear); a residual when the shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv(x)
        return x + y if self.residual else y


def _features(last_conv: bool) -> nn.Sequential:
    layers: list[nn.Module] = [ConvBNAct(3, STEM_CHANNELS, 3, 2, activation=nn.ReLU6)]
    channels = STEM_CHANNELS
    for expansion, out_channels, repeats, stride in INVERTED_RESIDUAL_SETTINGS:
        for index in range(repeats):
            layers.append(InvertedResidual(channels, out_channels, stride if index == 0 else 1, expansion))
            channels = out_channels
    if last_conv:
        layers.append(ConvBNAct(channels, LAST_CHANNELS, 1, activation=nn.ReLU6))
    return nn.Sequential(*layers)


class MobileNetV2Regressor(nn.Module):
    """MobileNetV2 trunk, four-stage mean-and-deviation pooling, a sigmoid score.

    Input: N×3×H×W RGB, ImageNet-normalised (see ``preprocess``); any H, W ≥ 32.
    Output: (N,) scores in [0, 1].

    Args:
        hidden: width of the head's hidden layer.
        last_conv: keep MobileNetV2's final 1×1 convolution to 1280 channels (0.4 M
            parameters) after the stride-32 block.
        dropout: in the head.
    """

    def __init__(self, hidden: int = 256, last_conv: bool = False, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = _features(last_conv)
        self.taps = {*STAGE_TAPS, len(self.features) - 1}
        pooled_channels = sum(STAGE_CHANNELS) + (LAST_CHANNELS if last_conv else INVERTED_RESIDUAL_SETTINGS[-1][1])
        self.head = ScoreHead(2 * pooled_channels, hidden, nn.Hardswish, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                pooled.append(mean_std_pool(x))
        return self.head(torch.cat(pooled, dim=1))

    def load_imagenet(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Take the trunk's weights from torchvision's ImageNet MobileNetV2 state dict (its classifier is dropped).

        Raises:
            ValueError: the state dict does not hold exactly this trunk's tensors.
        """
        own = self.features.state_dict()
        trunk = {key.removeprefix("features."): value for key, value in state_dict.items()}
        try:
            self.features.load_state_dict({key: trunk[key] for key in own})
        except (KeyError, RuntimeError) as e:
            raise ValueError(f"not torchvision MobileNetV2 weights: {e}".replace("\n", " ")) from None


def student() -> MobileNetV2Regressor:
    """The distillation recipe's student (shipped; 112 px), without the final 1280-channel convolution."""
    return MobileNetV2Regressor(hidden=256)


def teacher() -> MobileNetV2Regressor:
    """The distillation recipe's teacher (not shipped; 224 px): the whole trunk and a wider head."""
    return MobileNetV2Regressor(hidden=512, last_conv=True)
