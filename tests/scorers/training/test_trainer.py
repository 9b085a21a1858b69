"""Training runs end to end: the loss falls, checkpoints load and resume, runs repeat exactly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models.io import load_weights
from fiqa_stream.scorers.models.preprocess import crops_to_tensor
from fiqa_stream.scorers.training.data import scored_images, write_scored_images
from fiqa_stream.scorers.training.degradation_set import FACES_CSV
from fiqa_stream.scorers.training.degradations import underexposure
from fiqa_stream.scorers.training.recipe import (
    EnsembleRecipe,
    LossConfig,
    Monotone,
    MSPTRecipe,
    PooledLabels,
    PseudoLabels,
    Stage,
)
from fiqa_stream.scorers.training.trainer import (
    CHECKPOINTS,
    MODEL_FILE,
    RunOptions,
    degradation_counts,
    predict,
    rolled,
    stage_items,
    train_recipe,
)
from fiqa_stream.scorers.training.utility import SIGHTINGS_CSV


def _blurred_set(root: Path, count: int, seed: int) -> None:
    """Textures blurred by a random sigma, labelled 1 − sigma / 3: a quality a net can learn in a few steps."""
    rng = np.random.default_rng(seed)
    images, scores = [], []
    for _ in range(count):
        sigma = float(rng.uniform(0.0, 3.0))
        texture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        images.append(cv2.GaussianBlur(texture, (0, 0), sigma) if sigma > 0.3 else texture)
        scores.append(1.0 - sigma / 3.0)
    write_scored_images(root, images, scores, [f"img{i:03d}" for i in range(count)])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    _blurred_set(root / "train", 32, 0)
    _blurred_set(root / "val", 12, 1)
    return root


def _recipe(epochs: int = 4) -> MSPTRecipe:
    stage = Stage(name="s1", model="mspt", input_size=32, epochs=epochs, batch_size=8, lr=3e-3, patience=10,
                  warmup_epochs=0.5, loss=LossConfig(type="mse"))
    return MSPTRecipe(type="mspt", seed=3, stages=[stage])


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run")
    return out, train_recipe(_recipe(), data, out, RunOptions(device="cpu"))


@pytest.fixture(scope="module")
def trained(run: tuple[Path, dict]) -> Path:
    return run[0]


def test_training_lowers_the_loss_and_writes_the_model(run: tuple[Path, dict], data: Path) -> None:
    out, summary = run
    losses = summary["stages"][0]["train_loss"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    model, metadata = load_weights(out / MODEL_FILE)
    assert metadata["architecture"] == "mspt" and metadata["input_size"] == "32"
    items = scored_images(data / "val")
    assert predict(model, [i.path for i in items], 32, torch.device("cpu")).shape == (len(items),)


def test_the_checkpoint_loads_safely_and_marks_the_stage_done(trained: Path) -> None:
    saved = torch.load(trained / CHECKPOINTS / "s1.pt", weights_only=True)
    assert saved["done"] and saved["epoch"] == 4
    assert set(saved["model"]) == set(saved["best_model"])


def test_a_resumed_finished_run_reloads_the_same_weights(data: Path, trained: Path) -> None:
    before = load_file(str(trained / MODEL_FILE))
    train_recipe(_recipe(), data, trained, RunOptions(device="cpu", resume=True))
    after = load_file(str(trained / MODEL_FILE))
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_run_resumed_mid_stage_continues_from_its_last_epoch(data: Path, tmp_path: Path) -> None:
    train_recipe(_recipe(epochs=1), data, tmp_path, RunOptions(device="cpu"))
    checkpoint = tmp_path / CHECKPOINTS / "s1.pt"
    saved = torch.load(checkpoint, weights_only=True)
    torch.save({**saved, "done": False}, checkpoint)
    train_recipe(_recipe(epochs=2), data, tmp_path, RunOptions(device="cpu", resume=True))
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2


def test_the_same_seed_gives_the_same_weights(data: Path, trained: Path, tmp_path: Path) -> None:
    train_recipe(_recipe(), data, tmp_path, RunOptions(device="cpu"))
    first, second = load_file(str(trained / MODEL_FILE)), load_file(str(tmp_path / MODEL_FILE))
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_checkpoints_are_not_overwritten_without_resume(data: Path, trained: Path) -> None:
    with pytest.raises(ConfigError, match="--resume"):
        train_recipe(_recipe(), data, trained, RunOptions(device="cpu"))


def test_a_run_can_continue_given_weights(data: Path, trained: Path, tmp_path: Path) -> None:
    # A learning rate too small to move them: the run ends where the given weights were.
    recipe = _recipe(epochs=1)
    recipe = recipe.model_copy(update={"stages": [recipe.stages[0].model_copy(update={"lr": 1e-12})]})
    train_recipe(recipe, data, tmp_path, RunOptions(device="cpu", start_from=trained / MODEL_FILE))
    given, after = load_file(str(trained / MODEL_FILE)), load_file(str(tmp_path / MODEL_FILE))
    learnt = [k for k in given if "running_" not in k and "num_batches" not in k]
    assert all(torch.allclose(given[k], after[k], atol=1e-6) for k in learnt)


def test_given_weights_of_another_architecture_are_refused(data: Path, trained: Path, tmp_path: Path) -> None:
    recipe = _recipe(epochs=1)
    recipe = recipe.model_copy(update={"stages": [recipe.stages[0].model_copy(update={"model": "student"})]})
    with pytest.raises(ConfigError, match="--start-from .* holds a mspt model, the recipe trains student"):
        train_recipe(recipe, data, tmp_path, RunOptions(device="cpu", start_from=trained / MODEL_FILE))


def test_only_mspt_type_recipes_continue_given_weights(data: Path, trained: Path, tmp_path: Path) -> None:
    members = [Stage(name=m, model=m, input_size=32, epochs=1, loss=LossConfig(type="mse"))
               for m in ("mobilenet_v3_small", "shufflenet_v2")]
    recipe = EnsembleRecipe(type="ensemble", members=members)
    with pytest.raises(ConfigError, match="--start-from: only recipes of type mspt"):
        train_recipe(recipe, data, tmp_path, RunOptions(device="cpu", start_from=trained / MODEL_FILE))


def test_pooled_labels_need_a_training_folder_that_records_its_people(data: Path, tmp_path: Path) -> None:
    recipe = _recipe(epochs=1).model_copy(update={"pooled_labels": PooledLabels(share=1.0)})
    with pytest.raises(ConfigError, match=f"pooled_labels: .*train has no {SIGHTINGS_CSV}"):
        train_recipe(recipe, data, tmp_path, RunOptions(device="cpu"))


def test_a_recipe_trains_on_labels_pooled_over_people(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _blurred_set(data / "train", 16, 0)
    _blurred_set(data / "val", 8, 1)
    items = scored_images(data / "train")
    with (data / "train" / SIGHTINGS_CSV).open("w") as handle:
        handle.write("image_name,identity,chain,utility\n")
        handle.writelines(f"{i.path.name},{n % 4},defocus_blur:{1 - i.score:.4f},{i.score}\n"
                          for n, i in enumerate(items))
    recipe = _recipe(epochs=1).model_copy(update={"pooled_labels": PooledLabels(share=1.0, neighbours=2)})
    summary = train_recipe(recipe, data, tmp_path / "out", RunOptions(device="cpu"))
    assert summary["stages"][0]["epochs"] == 1


def test_a_second_photo_recipe_needs_folders_that_keep_their_descriptors(data: Path, tmp_path: Path) -> None:
    recipe = _recipe(epochs=1).model_copy(update={"second_photo": True})
    with pytest.raises(ConfigError, match=f"second_photo: .*train has no {SIGHTINGS_CSV} and descriptors.npz"):
        train_recipe(recipe, data, tmp_path, RunOptions(device="cpu"))


def _monotone_recipe(epochs: int) -> MSPTRecipe:
    recipe = _recipe(epochs=epochs)
    pairs = Monotone(weight=5.0, pairs=8, degradations=["underexposure"])
    return recipe.model_copy(update={"stages": [recipe.stages[0].model_copy(update={"monotone": pairs})]})


def test_a_monotone_stage_needs_clean_crops_recorded_in_faces_csv(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"stage s1: monotone needs clean crops .*{FACES_CSV}"):
        train_recipe(_monotone_recipe(epochs=1), data, tmp_path, RunOptions(device="cpu"))


def test_ranking_pairs_teach_an_order_the_labels_do_not(tmp_path: Path) -> None:
    # Every label is 0.5: only the pairs say that a darker crop is worse.
    data, rng = tmp_path / "data", np.random.default_rng(0)
    textures = [rng.integers(40, 256, (32, 32, 3), dtype=np.uint8) for _ in range(48)]
    for part, chosen in (("train", textures[:32]), ("val", textures[32:40])):
        write_scored_images(data / part, chosen, [0.5] * len(chosen), [f"img{i:03d}" for i in range(len(chosen))])
        (data / part / FACES_CSV).write_text("image_name,face_id,view,chain\n" + "".join(
            f"img{i:03d}.png,{i},0,\n" for i in range(len(chosen))))
    held_out = np.stack(textures[40:])
    darkened = np.stack([underexposure(t, 0.5, rng) for t in held_out])

    def darkening_costs(recipe: MSPTRecipe, out: Path) -> np.ndarray:
        train_recipe(recipe, data, out, RunOptions(device="cpu"))
        model = load_weights(out / MODEL_FILE)[0].eval()
        with torch.no_grad():
            return (model(crops_to_tensor(held_out, 32)) - model(crops_to_tensor(darkened, 32))).numpy()

    paired = darkening_costs(_monotone_recipe(epochs=3), tmp_path / "paired")
    unpaired = darkening_costs(_recipe(epochs=3), tmp_path / "unpaired")
    assert (paired > 0).all()
    assert paired.mean() > 5 * abs(unpaired.mean())


def test_mirror_consistency_scores_a_crop_and_its_mirror_alike(tmp_path: Path) -> None:
    # Labels a network could read off one side: textures blurred on their left half only.
    data, rng = tmp_path / "data", np.random.default_rng(0)

    def left_blurred(count: int) -> tuple[list[np.ndarray], list[float]]:
        images, labels = [], []
        for _ in range(count):
            sigma, image = float(rng.uniform(0.5, 3.0)), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            image[:, :16] = cv2.GaussianBlur(image[:, :16], (0, 0), sigma)
            images.append(image)
            labels.append(1.0 - sigma / 3.0)
        return images, labels

    for part, count in (("train", 48), ("val", 12)):
        images, labels = left_blurred(count)
        write_scored_images(data / part, images, labels, [f"img{i:03d}" for i in range(count)])
    held_out = np.stack(left_blurred(16)[0])

    def mirror_gap(weight: float, out: Path) -> float:
        stage = _recipe(epochs=15).stages[0].model_copy(
            update={"flip": False, "lr": 1e-2, "mirror_consistency": weight})
        train_recipe(MSPTRecipe(type="mspt", seed=3, stages=[stage]), data, out, RunOptions(device="cpu"))
        model = load_weights(out / MODEL_FILE)[0].eval()
        with torch.no_grad():
            mirrored = np.ascontiguousarray(held_out[:, :, ::-1])
            gaps = model(crops_to_tensor(held_out, 32)) - model(crops_to_tensor(mirrored, 32))
        return float(gaps.abs().mean())

    consistent, free = mirror_gap(50.0, tmp_path / "consistent"), mirror_gap(0.0, tmp_path / "free")
    assert consistent < 0.3 * free


def test_a_data_root_without_val_is_named(tmp_path: Path) -> None:
    _blurred_set(tmp_path / "train", 8, 0)
    with pytest.raises(ConfigError, match="no val/ folder"):
        train_recipe(_recipe(), tmp_path, tmp_path / "out", RunOptions(device="cpu"))


def test_a_shipped_model_labels_the_unlabelled_crops_a_recipe_names(tmp_path: Path) -> None:
    from fiqa_stream.scorers.weights import load_shipped

    data, unlabelled = tmp_path / "data", tmp_path / "data" / "unlabelled-1"
    _blurred_set(data / "train", 16, 0)
    _blurred_set(data / "val", 8, 1)
    _blurred_set(unlabelled, 16, 2)
    pseudo = PseudoLabels(model="mspt", unlabelled=["unlabelled-1"])
    train_recipe(_recipe(epochs=1).model_copy(update={"pseudo_labels": pseudo}), data, tmp_path / "out",
                 RunOptions(device="cpu"))
    rows = [line.split(",") for line in (tmp_path / "out" / "pseudo-1.csv").read_text().splitlines()]
    expected = predict(load_shipped("mspt"), [unlabelled / name for name, _ in rows], 112, torch.device("cpu"))
    assert len(rows) == 16
    assert [float(score) for _, score in rows] == pytest.approx(expected.tolist(), abs=1e-5)


def test_a_missing_unlabelled_folder_is_named(data: Path, tmp_path: Path) -> None:
    pseudo = PseudoLabels(model="mspt", unlabelled=["nowhere"])
    recipe = _recipe(epochs=1).model_copy(update={"pseudo_labels": pseudo})
    with pytest.raises(ConfigError, match="pseudo_labels.unlabelled: .* no nowhere/ folder"):
        train_recipe(recipe, data, tmp_path, RunOptions(device="cpu"))


def test_stages_take_nested_shares_of_the_samples(data: Path) -> None:
    items = scored_images(data / "train")
    stage = _recipe().stages[0]
    half = stage_items(items, stage.model_copy(update={"fraction": 0.5}), None, 0)
    most = stage_items(items, stage.model_copy(update={"fraction": 0.75}), None, 0)
    assert len(half) == 16 and len(most) == 24 and set(half) <= set(most)


def test_stages_can_keep_only_short_degradation_chains(data: Path) -> None:
    items = scored_images(data / "train")
    counts = {item.path: i % 3 for i, item in enumerate(items)}
    chosen = stage_items(items, _recipe().stages[0].model_copy(update={"max_degradations": 1}), counts, 0)
    assert chosen and all(counts[item.path] <= 1 for item in chosen)


def test_chain_lengths_find_their_samples_from_a_relative_data_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _blurred_set(tmp_path / "train", 8, 0)
    names = [item.path.name for item in scored_images(tmp_path / "train")]
    chains = "".join(f"{name},0,0,{'blur:0.5 noise:0.2' if i % 2 else ''}\n" for i, name in enumerate(names))
    (tmp_path / "train" / FACES_CSV).write_text("image_name,face_id,view,chain\n" + chains)
    monkeypatch.chdir(tmp_path)
    counts, items = degradation_counts(Path("train")), scored_images(Path("train"))
    assert counts is not None and all(item.path in counts for item in items)
    stage = _recipe().stages[0].model_copy(update={"max_degradations": 1})
    assert len(stage_items(items, stage, counts, 0)) == 4


def test_cuda_is_refused_clearly_where_there_is_none(data: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        train_recipe(_recipe(), data, tmp_path, RunOptions(device="cuda"))


@pytest.mark.gpu
def test_training_runs_on_cuda(data: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    train_recipe(_recipe(epochs=1), data, tmp_path, RunOptions(device="cuda"))
    assert (tmp_path / MODEL_FILE).is_file()


def test_roll_turns_each_crop_about_its_centre() -> None:
    images = torch.zeros(64, 1, 33, 33)
    images[:, :, 16, 16:] = 1.0  # a bar from the centre to the right edge
    turned = rolled(images, 30.0, torch.Generator().manual_seed(0))
    # The centre stays, and the bar tilts by at most 30°: it never reaches the column's far rows.
    assert torch.all(turned[:, :, 16, 16] > 0.9)
    assert torch.all(turned[:, :, :6, 32] < 0.1) and torch.all(turned[:, :, 27:, 32] < 0.1)
    # It does turn: most bars leave their row at the right edge.
    assert (turned[:, 0, 16, 32] < 0.5).float().mean() > 0.5
    assert torch.equal(rolled(images, 0.0, torch.Generator()), images)
