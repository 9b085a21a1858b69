"""Config models of the quality scorers, told apart by ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator

from fiqa_stream.configbase import StrictModel, default_type


class HeuristicWeights(StrictModel):
    """Relative weights of the weight-free components in the fused score."""

    sharpness: float = Field(0.35, ge=0.0, description="Weight of focus/blur (aligned face).")
    exposure: float = Field(0.2, ge=0.0, description="Weight of exposure and contrast.")
    pose: float = Field(0.2, ge=0.0, description="Weight of frontality from the 5 landmarks.")
    size: float = Field(0.15, ge=0.0, description="Weight of face size (inter-eye distance).")
    confidence: float = Field(0.1, ge=0.0, description="Weight of the detector's confidence.")


class HeuristicScorerConfig(StrictModel):
    """Weight-free, face-specific quality: sharpness, exposure, pose, size, confidence."""

    implementation: ClassVar[str] = "fiqa_stream.scorers.heuristic:HeuristicScorer"
    type: Literal["heuristic"] = "heuristic"
    weights: HeuristicWeights = Field(default_factory=HeuristicWeights, description="Fusion weights.")
    full_size_eye_distance: float = Field(
        60.0, gt=0.0,
        description="Inter-eye distance in pixels at which the size component reaches 1.",
    )


class FiqaWeights(HeuristicWeights):
    """Relative weights of the learned score and the weight-free components in the fused score.

    The defaults are the heuristic scorer's weights plus the model at 0.3 (23 % of the
    total): the shipped models, trained on eight faces, rank degradations of one face
    well but wobble by a frame or two near a face's best moment, so the weight-free
    sharpness still leads. With a model share of 40 % or more, 3 of 7 best shots of the
    composed test clips moved one frame off their ground-truth window.
    """

    model: float = Field(0.3, ge=0.0, description="Weight of the learned FIQA model's score.")


#: The shipped models' names (``scorers/weights.SHIPPED``).
ShippedName = Literal["student-utility", "student", "ensemble", "mspt", "ensemble-utility", "mspt-utility"]


class FiqaScorerConfig(StrictModel):
    """A learned FIQA model (shipped, or an ONNX file of one's own; onnxruntime) fused with the weight-free components.

    The fused score is the weighted arithmetic mean of the components, weights
    normalised to sum to 1: the model sees image quality (blur, noise, compression,
    exposure) on the aligned crop, the weight-free components add what a crop alone
    cannot show (pose from the landmarks, size in the frame, detector confidence).
    """

    implementation: ClassVar[str] = "fiqa_stream.scorers.fiqa:FiqaScorer"
    type: Literal["fiqa"] = "fiqa"
    model: Union[ShippedName, Path] = Field(  # noqa: UP007
        "student-utility",
        description="Shipped model: student-utility (default: seed 002's teacher -> self-training -> student "
        "chain on recognition-utility labels, then taught on labels pooled over people; predicts what a "
        "recogniser can do with a sighting best on held-out identities), student (the seed-002 student of "
        "MS-SSIM labels), mspt (seed 000, the fastest), ensemble (seed 001); mspt-utility and "
        "ensemble-utility: seeds 000 and 001 on recognition-utility labels (from scratch, so they rank worse "
        "than student-utility). See the model card. Or the path of a model of your own: an .onnx file "
        "written by `fiqa-stream export`, with the fusion weights fitted with it (`fiqa-stream eval "
        "--fit-fusion`) in <stem>.fusion.json beside it when there are any.",
    )
    weights: FiqaWeights | None = Field(
        None,
        description="Fusion weights. Unset: the weights fitted against recognition utility with the shipped "
        "model (its <version>.fusion.json, see the model card), or FiqaWeights' defaults for a model shipped "
        "without them. Set (even in part): these, unset keys taking FiqaWeights' defaults.",
    )
    full_size_eye_distance: float = Field(
        60.0, gt=0.0,
        description="Inter-eye distance in pixels at which the size component reaches 1.",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Most crops per onnxruntime call.")
    threads: int = Field(
        0, ge=0, le=256, description="onnxruntime intra-op threads (0: onnxruntime's default, one per core)."
    )
    precision: Literal["auto", "float32", "int8"] = Field(
        "auto",
        description="The model's arithmetic: int8 (the 8-bit integer model shipped for CPUs, about twice as "
        "fast; see the model card for what it costs), float32, or auto: int8 on the CPU where the model ships "
        "one, float32 otherwise (CUDA runs the float model). A model file runs as it is (auto or float32).",
    )

    @field_validator("model")
    @classmethod
    def _shipped_or_onnx_file(cls, model: str | Path) -> str | Path:
        from fiqa_stream.registry import did_you_mean
        from fiqa_stream.scorers.weights import SHIPPED

        if isinstance(model, Path):
            if model.suffix != ".onnx":
                hint = did_you_mean(str(model), sorted(SHIPPED))
                raise ValueError(f"'{model}' is neither a shipped model ({', '.join(SHIPPED)}){hint} "
                                 "nor an .onnx file")
            if not model.is_file():
                raise ValueError(f"{model}: no such ONNX model file")
        return model

    @model_validator(mode="after")
    def _int8_shipped(self) -> FiqaScorerConfig:
        from fiqa_stream.scorers.weights import SHIPPED

        if self.precision == "int8" and isinstance(self.model, Path):
            raise ValueError(f"precision: int8: model file {self.model} runs as it is; for an 8-bit model give "
                             "the file `fiqa-stream export --int8` writes, with precision auto")
        if self.precision == "int8" and SHIPPED[str(self.model)].int8_onnx_sha256 is None:
            with_int8 = sorted(name for name, spec in SHIPPED.items() if spec.int8_onnx_sha256 is not None)
            raise ValueError(f"precision: int8: model '{self.model}' ships no int8 model (those that do: "
                             f"{', '.join(with_int8)}); use float32 or auto")
        return self


# Without a ``type`` the default scorer's keys apply, as with no scorer section at all.
ScorerConfig = Annotated[  # noqa: UP007
    Union[HeuristicScorerConfig, FiqaScorerConfig],  # noqa: UP007
    BeforeValidator(default_type("fiqa")),
    Field(discriminator="type"),
]
