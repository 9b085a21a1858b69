"""Config models of the quality scorers, told apart by ``type``."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from fiqa_stream.configbase import StrictModel


class HeuristicWeights(StrictModel):
    """Relative weights of the weight-free components in the fused score."""

    sharpness: float = Field(0.35, ge=0.0, description="Weight of focus/blur (aligned face).")
    exposure: float = Field(0.2, ge=0.0, description="Weight of exposure and contrast.")
    pose: float = Field(0.2, ge=0.0, description="Weight of frontality from the 5 landmarks.")
    size: float = Field(0.15, ge=0.0, description="Weight of face size (inter-eye distance).")
    confidence: float = Field(0.1, ge=0.0, description="Weight of the detector's confidence.")


class HeuristicScorerConfig(StrictModel):
    """Weight-free, face-specific quality: sharpness, exposure, pose, size, confidence."""

    type: Literal["heuristic"] = "heuristic"
    weights: HeuristicWeights = Field(default_factory=HeuristicWeights, description="Fusion weights.")
    full_size_eye_distance: float = Field(
        60.0, gt=0.0,
        description="Inter-eye distance in pixels at which the size component reaches 1.",
    )


# A one-member Union still gives the "unknown type" error its tag; more scorers join it.
ScorerConfig = Annotated[Union[HeuristicScorerConfig], Field(discriminator="type")]  # noqa: UP007
