"""The shipped recipes load and follow their seeds; bad recipes fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models import MAX_GMACS, MAX_PARAMS
from fiqa_stream.scorers.models.complexity import complexity
from fiqa_stream.scorers.training.degradations import CAMERA
from fiqa_stream.scorers.training.recipe import RECIPES, DistillRecipe, EnsembleRecipe, MSPTRecipe, load_recipe


def test_the_three_seeds_recipes_ship() -> None:
    recipes = {name: load_recipe(name) for name in RECIPES}
    assert isinstance(recipes["ensemble"], EnsembleRecipe) and recipes["ensemble"].seed == 1
    assert isinstance(recipes["mspt"], MSPTRecipe) and recipes["mspt"].seed == 0
    assert isinstance(recipes["distill"], DistillRecipe) and recipes["distill"].seed == 2


def test_the_ensemble_members_use_the_correlation_loss() -> None:
    recipe = load_recipe("ensemble")
    assert isinstance(recipe, EnsembleRecipe)
    assert all(member.loss.type == "mse_corr" for member in recipe.members)


def test_mspt_stages_raise_resolution_and_diversity() -> None:
    recipe = load_recipe("mspt")
    assert isinstance(recipe, MSPTRecipe) and len(recipe.stages) == 3
    sizes = [s.input_size for s in recipe.stages]
    shares = [s.fraction for s in recipe.stages]
    chains = [s.max_degradations if s.max_degradations is not None else 99 for s in recipe.stages]
    assert sizes == sorted(sizes) and shares == sorted(shares) and chains == sorted(chains)
    assert len(set(sizes)) == 3


def test_distillation_uses_mse_plus_plcc_and_a_shipped_student() -> None:
    recipe = load_recipe("distill")
    assert isinstance(recipe, DistillRecipe)
    assert {recipe.teacher.loss.type, recipe.self_training.loss.type, recipe.student.loss.type} == {"plcc_mse"}
    cost = complexity(recipe.student.model, recipe.input_size)
    assert cost.params <= MAX_PARAMS and cost.gmacs <= MAX_GMACS
    assert recipe.teacher.pretrained and recipe.student.pretrained
    assert recipe.student.loss.rank_weight > 0
    assert recipe.teacher.input_size > recipe.student.input_size


@pytest.mark.parametrize("name", ["mspt-utility", "ensemble-utility"])
def test_the_compact_utility_recipes_learn_from_crops_the_default_model_labelled(name: str) -> None:
    recipe, seed = load_recipe(name), load_recipe(name.removesuffix("-utility"))
    assert isinstance(recipe, MSPTRecipe | EnsembleRecipe) and recipe.pseudo_labels is not None
    assert recipe.pseudo_labels.model == "student-utility"
    assert recipe.pseudo_labels.unlabelled == ["unlabelled-1", "unlabelled-2"]
    assert type(recipe) is type(seed) and recipe.seed == seed.seed and recipe.architecture == seed.architecture


@pytest.mark.parametrize(("key", "expected"), [
    ("pseudo_labels: {model: student-utilty, unlabelled: [u]}", r"pseudo_labels.model.*did you mean 'student-utility'"),
    ("pooled_labels: {share: 1.5}", r"pooled_labels.share"),
])
def test_a_bad_label_source_is_refused_by_key(tmp_path: Path, key: str, expected: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"type: mspt\n{key}\nstages:\n"
                    "  - {name: s, model: mspt, input_size: 64, epochs: 1, loss: {type: mse}}\n")
    with pytest.raises(ConfigError, match=expected):
        load_recipe(path)


def test_the_pooled_student_recipe_pools_every_label_over_people() -> None:
    recipe = load_recipe("student-utility-pooled")
    assert isinstance(recipe, MSPTRecipe) and recipe.architecture == "student"
    assert recipe.pooled_labels is not None and recipe.pooled_labels.share == 1.0


def test_the_second_photo_recipe_is_the_pooled_one_with_one_photo_people_given_a_second_photo() -> None:
    pooled, second = load_recipe("student-utility-pooled"), load_recipe("student-utility-second-photo")
    assert second.second_photo and not pooled.second_photo
    assert second.model_copy(update={"second_photo": False, "description": pooled.description}) == pooled


def test_the_monotone_recipe_is_the_second_photo_one_with_ranking_pairs_of_camera_degradations() -> None:
    second, monotone = load_recipe("student-utility-second-photo"), load_recipe("student-utility-monotone")
    assert isinstance(second, MSPTRecipe) and isinstance(monotone, MSPTRecipe)
    pairs = monotone.stages[0].monotone
    assert pairs is not None and pairs.weight > 0 and set(pairs.degradations) <= set(CAMERA)
    unpaired = [stage.model_copy(update={"monotone": None, "name": second.stages[0].name}) for stage in monotone.stages]
    assert monotone.model_copy(update={"stages": unpaired, "description": second.description}) == second


def test_an_unknown_degradation_of_the_ranking_pairs_is_named_by_key(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("type: mspt\nstages:\n  - {name: a, model: mspt, input_size: 64, epochs: 1, loss: {type: mse}, "
                    "monotone: {weight: 1.0, degradations: [defocus_blur, underexposed]}}\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: stages\[0\]\.monotone\.degradations.*'underexposed'.*"
                       "did you mean 'underexposure'"):
        load_recipe(path)


def test_an_unknown_recipe_gets_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'mspt'"):
        load_recipe("msp")


def test_a_bad_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text((Path(__file__).parents[3] / "scorers/training/recipes/mspt.yaml").read_text()
                    .replace("epochs: 10", "epochs: 0", 1))
    with pytest.raises(ConfigError, match=r"r\.yaml: stages\[0\]\.epochs"):
        load_recipe(path)


def test_an_unknown_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("type: mspt\nstages:\n  - {name: a, model: mobilenet, input_size: 64, epochs: 1, "
                    "loss: {type: mse}}\n")
    with pytest.raises(ConfigError, match="unknown model 'mobilenet'"):
        load_recipe(path)


def test_imagenet_weights_are_refused_for_an_architecture_without_them(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("type: mspt\nstages:\n  - {name: a, model: mspt, input_size: 64, epochs: 1, pretrained: true, "
                    "loss: {type: mse}}\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: stages\[0\].*no ImageNet weights for 'mspt'"):
        load_recipe(path)
