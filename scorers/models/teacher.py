"""The Efficient-FIQA teacher (seed 002): a wider, deeper network of the student's family.

Seed 002's teacher is a Swin-B, far beyond a CPU budget. This teacher keeps the idea
(a much larger model whose knowledge the student distils) at a size that trains on a
CPU in minutes at small input: ConvNeXt-style 7×7 depthwise encoders at widths
64/128/256/512 (depths 2/2/4/2, about 9 M parameters), with one SDTA block closing
the two coarsest stages for global context. Sharing the student's block types keeps
both on the same input contract; the teacher is not bound by the shipped-model limits.
"""

from __future__ import annotations

from fiqa_stream.scorers.models.student import EdgeNeXtRegressor, EdgeNeXtSpec

TEACHER = EdgeNeXtSpec(
    dims=(64, 128, 256, 512),
    depths=(2, 2, 4, 2),
    kernels=(7, 7, 7, 7),
    attention_blocks=(0, 0, 1, 1),
    heads=8,
    split_scales=(2, 2, 4, 4),
    head_hidden=256,
)


def teacher() -> EdgeNeXtRegressor:
    """The default teacher."""
    return EdgeNeXtRegressor(TEACHER)
