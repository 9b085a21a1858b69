"""Training of one stage, and of a whole recipe, with checkpoints, validation and early stopping.

Reproducible: with ``num_workers=0`` (the default) every random draw comes from
generators seeded by the recipe's seed, the stage and the epoch (weights from
``seed`` and the stage index; data order, mirroring and dropout from those plus the
epoch), so a run gives the same weights on the same machine, and a resumed run the
same as an uninterrupted one. A checkpoint is written after every epoch
(``OUT/checkpoints/STAGE.pt``: weights, optimiser, best weights so far and the
early-stopping state, loaded with ``torch.load(weights_only=True)``); a finished stage
is marked done and skipped on resume.

Data root layout (``degradation_set.write_training_folders`` writes it; a user with
real data arranges theirs alike): ``train/`` and ``val/`` in the challenge layout
(``data.scored_images``), optionally with ``faces.csv``, and for the distillation
recipe two folders of unlabelled images.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models import build_model
from fiqa_stream.scorers.models.ensemble import AveragingEnsemble
from fiqa_stream.scorers.models.io import load_weights, save_weights
from fiqa_stream.scorers.training.data import (
    IMAGE_SUFFIXES,
    ScoredImage,
    ScoredImageDataset,
    read_image,
    scored_images,
)
from fiqa_stream.scorers.training.degradation_set import FACES_CSV
from fiqa_stream.scorers.training.losses import MSECorrLoss, PLCCMSELoss, fidelity_rank_loss
from fiqa_stream.scorers.training.metrics import Metrics, evaluate
from fiqa_stream.scorers.training.monotone import MonotonePairs
from fiqa_stream.scorers.training.pooled_labels import pool_labels
from fiqa_stream.scorers.training.pretrained import imagenet_mobilenet_v2
from fiqa_stream.scorers.training.recipe import (
    DistillRecipe,
    EnsembleRecipe,
    LossConfig,
    MSPTRecipe,
    PseudoLabels,
    Stage,
)
from fiqa_stream.scorers.training.second_photo import fit_law, second_photo_labels

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MODEL_FILE = "model.safetensors"
TEACHER_FILE = "teacher.safetensors"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class RunOptions:
    """How to run a recipe (not what to train).

    Attributes:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).
        epochs: replaces every stage's epochs when given (quick runs).
        seed: replaces the recipe's seed when given.
        resume: continue from the checkpoints in the output folder.
        num_workers: data-loading processes (0 keeps runs bit-reproducible).
        start_from: weights (``.safetensors``) the first stage of an MSPT-type recipe continues
            instead of starting afresh; their architecture must be the recipe's.
    """

    device: str = "auto"
    epochs: int | None = None
    seed: int | None = None
    resume: bool = False
    num_workers: int = 0
    start_from: Path | None = None


@dataclass(frozen=True)
class StageResult:
    """The outcome of one stage: best validation metrics, epochs run and each epoch's mean training loss."""

    name: str
    metrics: Metrics
    epochs: int
    losses: list[float]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; anything else as given.

    Raises:
        ConfigError: CUDA asked for but not available, or an unknown device.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"--device: unknown device '{name}' (cpu, cuda, cuda:N or auto)") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (this torch build or no GPU)")
    return device


def rolled(images: torch.Tensor, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Each N×C×H×W image turned about its centre by a uniform angle in ±``max_degrees`` (edges repeated)."""
    angles = (torch.rand(images.shape[0], generator=generator) * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = nn.functional.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_loss(config: LossConfig) -> nn.Module:
    """The loss module of a stage."""
    base: nn.Module = {
        "mse": nn.MSELoss(),
        "mse_corr": MSECorrLoss(config.weight),
        "plcc_mse": PLCCMSELoss(config.weight),
    }[config.type]
    if config.rank_weight == 0:
        return base
    return _WithRank(base, config.rank_weight, config.rank_scale)


class _WithRank(nn.Module):
    def __init__(self, base: nn.Module, weight: float, scale: float) -> None:
        super().__init__()
        self.base, self.weight, self.scale = base, weight, scale

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rank = fidelity_rank_loss(predictions, targets, self.scale)
        loss: torch.Tensor = self.base(predictions, targets) + self.weight * rank
        return loss


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    Raises:
        ConfigError: the folder is missing or holds no images.
    """
    if not folder.is_dir():
        raise ConfigError(f"unlabelled image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"unlabelled image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def degradation_counts(folder: Path) -> dict[Path, int] | None:
    """Resolved image path (as ``scored_images`` gives it) → number of degradations applied, from ``faces.csv``.

    None without ``faces.csv``.
    """
    path = folder / FACES_CSV
    if not path.is_file():
        return None
    root = folder.resolve()
    with path.open(newline="", encoding="utf-8") as handle:
        return {root / row["image_name"]: len(row["chain"].split()) for row in csv.DictReader(handle)}


def clean_crops(items: Sequence[ScoredImage], counts: dict[Path, int] | None) -> list[np.ndarray]:
    """The crops among ``items`` that ``faces.csv`` records without a degradation (none without it)."""
    if counts is None:
        return []
    return [read_image(item.path) for item in items if counts.get(item.path) == 0]


def stage_items(
    items: Sequence[ScoredImage], stage: Stage, counts: dict[Path, int] | None, seed: int
) -> list[ScoredImage]:
    """The training samples a stage uses: at most ``max_degradations`` degradations, a nested ``fraction``.

    Crops without a recorded chain (pseudo-labelled folders have no ``faces.csv``) pass the chain filter.
    """
    chosen = list(items)
    if stage.max_degradations is not None and counts is not None:
        chosen = [item for item in chosen if counts.get(item.path, 0) <= stage.max_degradations]
    if stage.fraction < 1.0:
        # One permutation for every stage of the recipe: a smaller share is a prefix of a larger one.
        order = np.random.default_rng(seed).permutation(len(chosen))
        keep = sorted(order[: max(2, round(stage.fraction * len(chosen)))].tolist())
        chosen = [chosen[i] for i in keep]
    return chosen


@torch.no_grad()
def predict(
    model: nn.Module, paths: Sequence[Path], input_size: int, device: torch.device, batch_size: int = 64
) -> np.ndarray:
    """Scores of the images at ``paths`` (read, resized, normalised as in training)."""
    dataset = ScoredImageDataset([ScoredImage(p, 0.0) for p in paths], input_size)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    model.eval()
    scores = [model(x.to(device)).float().cpu().numpy() for x, _ in loader]
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)


def validate(model: nn.Module, items: Sequence[ScoredImage], input_size: int, device: torch.device) -> Metrics:
    """All metrics of ``model`` on labelled ``items``."""
    predictions = predict(model, [item.path for item in items], input_size, device)
    return evaluate(predictions, [item.score for item in items])


def _learning_rate(stage: Stage, step: int, steps_per_epoch: int) -> float:
    warmup = stage.warmup_epochs * steps_per_epoch
    total = stage.epochs * steps_per_epoch
    if step < warmup:
        return stage.lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return stage.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def fit_stage(
    model: nn.Module,
    stage: Stage,
    train: Sequence[ScoredImage],
    val: Sequence[ScoredImage],
    *,
    seed: int,
    device: torch.device,
    checkpoint: Path,
    num_workers: int = 0,
    clean: Sequence[np.ndarray] = (),
) -> StageResult:
    """Train ``model`` in place for one stage and leave it holding the best validation weights.

    Resumes from ``checkpoint`` when it exists (a finished stage only reloads its best
    weights); writes it after every epoch. A stage with ``monotone`` set draws its
    ranking pairs from the crops ``clean``.

    Raises:
        ConfigError: fewer training samples than one batch, fewer than 2 validation samples,
            or ``monotone`` set and no clean crop.
    """
    if len(train) < stage.batch_size:
        raise ConfigError(
            f"stage {stage.name}: {len(train)} training samples, fewer than one batch of {stage.batch_size}"
        )
    if len(val) < 2:
        raise ConfigError(f"stage {stage.name}: validation needs at least 2 samples, got {len(val)}")
    if stage.monotone is not None and not clean:
        raise ConfigError(f"stage {stage.name}: monotone needs clean crops (rows of the training folder's "
                          f"{FACES_CSV} with an empty chain), found none")
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=stage.weight_decay)
    loss_fn = make_loss(stage.loss)
    epoch, bad_epochs, best_score = 0, 0, -math.inf
    history: list[float] = []
    best_state = _state(model)
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        epoch, bad_epochs, best_score = int(saved["epoch"]), int(saved["bad_epochs"]), float(saved["best_score"])
        best_state, history = saved["best_model"], list(saved["losses"])
        if saved["done"]:
            model.load_state_dict(best_state)
            log.info("%s: finished earlier (best val score %.4f); loaded", stage.name, best_score)
            return StageResult(stage.name, validate(model, val, stage.input_size, device), epoch, history)
        log.info("%s: resuming after epoch %d", stage.name, epoch)

    dataset = ScoredImageDataset(train, stage.input_size)
    steps_per_epoch = len(dataset) // stage.batch_size
    done = False
    while not done:
        epoch += 1
        started = time.perf_counter()
        torch.manual_seed(seed * 100_003 + epoch)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        loader = DataLoader(dataset, batch_size=stage.batch_size, shuffle=True, drop_last=True,
                            generator=generator, num_workers=num_workers)
        model.train()
        pairs = None if stage.monotone is None else MonotonePairs(
            clean, stage.monotone, stage.input_size, seed * 100_003 + epoch)
        losses = []
        for step, (x, y) in enumerate(loader):
            for group in optimiser.param_groups:
                group["lr"] = _learning_rate(stage, (epoch - 1) * steps_per_epoch + step, steps_per_epoch)
            if stage.flip:
                mirror = torch.rand(x.shape[0], generator=generator) < 0.5
                x[mirror] = x[mirror].flip(-1)
            if stage.roll > 0:
                x = rolled(x, stage.roll, generator)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            mirrored = [x.flip(-1)] if stage.mirror_consistency > 0 else []
            batch = None if pairs is None else pairs.batch()
            extra = [] if batch is None else [batch.milder.to(device), batch.harsher.to(device)]
            scores = model(torch.cat([x, *mirrored, *extra]))
            labelled, rest = scores[: len(x)], scores[len(x) :]
            loss = loss_fn(labelled, y)
            if mirrored:
                loss = loss + stage.mirror_consistency * mirror_cost(labelled, rest[: len(x)])
                rest = rest[len(x) :]
            if batch is not None and pairs is not None:
                milder, harsher = rest.split([len(batch), len(batch)])
                loss = loss + pairs.cost(milder, harsher, batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        metrics = validate(model, val, stage.input_size, device)
        if metrics.score > best_score:
            best_score, bad_epochs, best_state = metrics.score, 0, _state(model)
        else:
            bad_epochs += 1
        done = epoch >= stage.epochs or bad_epochs >= stage.patience
        log.info(
            "%s: epoch %d/%d  loss %.4f  val SRCC %.4f PLCC %.4f  (%.0f s)%s",
            stage.name, epoch, stage.epochs, history[-1], metrics.srcc, metrics.plcc,
            time.perf_counter() - started,
            "  early stop" if done and epoch < stage.epochs else "",
        )
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        temporary = checkpoint.with_suffix(".tmp")
        torch.save({
            "model": _state(model), "optimiser": optimiser.state_dict(), "epoch": epoch, "bad_epochs": bad_epochs,
            "best_score": best_score, "best_model": best_state, "done": done, "losses": history,
        }, temporary)
        temporary.replace(checkpoint)
    model.load_state_dict(best_state)
    return StageResult(stage.name, validate(model, val, stage.input_size, device), epoch, history)


def mirror_cost(scores: torch.Tensor, mirrored_scores: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the scores of crops and of their mirror images."""
    return torch.mean((scores.reshape(-1) - mirrored_scores.reshape(-1)) ** 2)


def _with_epochs(stage: Stage, epochs: int | None) -> Stage:
    return stage if epochs is None else stage.model_copy(update={"epochs": epochs})


def _write_pseudo_labels(path: Path, items: Sequence[ScoredImage]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows((item.path.name, f"{item.score:.6f}") for item in items)


def train_recipe(
    recipe: EnsembleRecipe | MSPTRecipe | DistillRecipe, data: Path, out: Path, options: RunOptions
) -> dict[str, object]:
    """Run every stage of ``recipe`` on the data root ``data``; write ``OUT/model.safetensors``.

    Returns:
        The summary also written to ``OUT/metrics.json``: recipe, seed, architecture,
        input size and each stage's validation metrics.

    Raises:
        ConfigError: missing data folders, or checkpoints in ``out`` without ``resume``.
    """
    device = resolve_device(options.device)
    seed = recipe.seed if options.seed is None else options.seed
    checkpoints = out / CHECKPOINTS
    if checkpoints.is_dir() and any(checkpoints.iterdir()) and not options.resume:
        raise ConfigError(f"{out} already holds checkpoints: pass --resume to continue, or choose another --out")
    for part in ("train", "val"):
        if not (data / part).is_dir():
            raise ConfigError(f"data root {data} has no {part}/ folder (see `fiqa-stream dataset --help`)")
    train, val = scored_images(data / "train"), scored_images(data / "val")
    counts = degradation_counts(data / "train")
    start = _starting_weights(recipe, options.start_from)
    if not isinstance(recipe, DistillRecipe) and recipe.second_photo:
        law = fit_law(data / "train")
        log.info("second photo for one-photo people: delta %.3f, c %.3f (fitted on %s)", law.delta, law.c,
                 data / "train")
        train = second_photo_labels(train, data / "train", law)
        val = second_photo_labels(val, data / "val", law)
    if not isinstance(recipe, DistillRecipe) and recipe.pooled_labels is not None:
        train = pool_labels(train, data / "train", recipe.pooled_labels.share, recipe.pooled_labels.neighbours)
    if not isinstance(recipe, DistillRecipe) and recipe.pseudo_labels is not None:
        train = [*train, *_shipped_pseudo_labels(recipe.pseudo_labels, data, out, device)]
    log.info("recipe %s (seed %d) on %s: %d train, %d val samples, device %s",
             recipe.type, seed, data, len(train), len(val), device)
    results: list[StageResult] = []

    def run(model: nn.Module, stage: Stage, index: int, items: Sequence[ScoredImage]) -> nn.Module:
        torch.manual_seed(seed * 1_000 + index)
        stage = _with_epochs(stage, options.epochs)
        chosen = stage_items(items, stage, counts, seed)
        clean = clean_crops(chosen, counts) if stage.monotone is not None else []
        results.append(fit_stage(model, stage, chosen, val, seed=seed * 1_000 + index, device=device,
                                 checkpoint=checkpoints / f"{stage.name}.pt", num_workers=options.num_workers,
                                 clean=clean))
        return model

    def fresh(stage: Stage, index: int) -> nn.Module:
        torch.manual_seed(seed * 1_000 + index)
        model = build_model(stage.model)
        if stage.pretrained:
            model.load_imagenet(imagenet_mobilenet_v2())  # type: ignore[operator]
        return model

    final: nn.Module
    if isinstance(recipe, EnsembleRecipe):
        members = [run(fresh(s, i), s, i, train) for i, s in enumerate(recipe.members)]
        final = AveragingEnsemble(members)
    elif isinstance(recipe, MSPTRecipe):
        final = fresh(recipe.stages[0], 0) if start is None else start
        for i, stage in enumerate(recipe.stages):
            run(final, stage, i, train)
    else:
        teacher = run(fresh(recipe.teacher, 0), recipe.teacher, 0, train)
        first = _pseudo_labelled(teacher, data / recipe.unlabelled[0], recipe.teacher.input_size, device)
        _write_pseudo_labels(out / "pseudo-1.csv", first)
        run(teacher, recipe.self_training, 1, [*train, *first])
        save_weights(teacher, out / TEACHER_FILE, recipe.teacher.model, recipe.teacher.input_size,
                     recipe="distill", seed=str(seed))
        second = _pseudo_labelled(teacher, data / recipe.unlabelled[1], recipe.teacher.input_size, device)
        _write_pseudo_labels(out / "pseudo-2.csv", second)
        final = run(fresh(recipe.student, 2), recipe.student, 2, [*train, *first, *second])

    final_metrics = validate(final.to(device), val, recipe.input_size, device)
    summary: dict[str, object] = {
        "recipe": recipe.type, "seed": seed, "architecture": recipe.architecture, "input_size": recipe.input_size,
        "stages": [
            {"name": r.name, "epochs": r.epochs, "train_loss": r.losses, "val": r.metrics.as_dict()} for r in results
        ],
        "val": final_metrics.as_dict(),
    }
    save_weights(final, out / MODEL_FILE, recipe.architecture, recipe.input_size,
                 recipe=recipe.type, seed=str(seed), val=json.dumps(final_metrics.as_dict()))
    (out / METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    log.info("%s: val SRCC %.4f PLCC %.4f; weights in %s", recipe.type, final_metrics.srcc, final_metrics.plcc,
             out / MODEL_FILE)
    return summary


def _starting_weights(
    recipe: EnsembleRecipe | MSPTRecipe | DistillRecipe, path: Path | None
) -> nn.Module | None:
    """The model ``--start-from`` names, checked against the recipe (None without one).

    Raises:
        ConfigError: the recipe is not MSPT-type, or the weights are another architecture.
        ModelError: the file is missing or not weights.
    """
    if path is None:
        return None
    if not isinstance(recipe, MSPTRecipe):
        raise ConfigError(f"--start-from: only recipes of type mspt continue given weights, not {recipe.type}")
    model, metadata = load_weights(path)
    if metadata.get("architecture") != recipe.architecture:
        raise ConfigError(f"--start-from {path}: holds a {metadata.get('architecture')} model, the recipe trains "
                          f"{recipe.architecture}")
    return model


def _shipped_pseudo_labels(spec: PseudoLabels, data: Path, out: Path, device: torch.device) -> list[ScoredImage]:
    """The recipe's unlabelled crops labelled by a shipped model (also written to ``OUT/pseudo-N.csv``)."""
    from fiqa_stream.scorers.weights import load_shipped, shipped

    for folder in spec.unlabelled:
        if not (data / folder).is_dir():
            raise ConfigError(f"pseudo_labels.unlabelled: data root {data} has no {folder}/ folder")
    labeller, input_size = load_shipped(spec.model).to(device), shipped(spec.model).input_size
    out.mkdir(parents=True, exist_ok=True)
    labelled: list[ScoredImage] = []
    for number, folder in enumerate(spec.unlabelled, start=1):
        items = _pseudo_labelled(labeller, data / folder, input_size, device)
        _write_pseudo_labels(out / f"pseudo-{number}.csv", items)
        labelled.extend(items)
    return labelled


def _pseudo_labelled(teacher: nn.Module, folder: Path, input_size: int, device: torch.device) -> list[ScoredImage]:
    paths = image_files(folder)
    scores = predict(teacher, paths, input_size, device)
    log.info("pseudo-labelled %d images of %s (mean %.3f)", len(paths), folder, float(scores.mean()))
    return [ScoredImage(path, float(score)) for path, score in zip(paths, scores, strict=True)]
