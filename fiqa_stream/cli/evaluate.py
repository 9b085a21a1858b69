"""``fiqa-stream eval`` on a held-out utility folder: every score against recognition utility, side by side.

Each held-out sighting is turned into the ``Face`` the pipeline would hand the scorer:
the sighting at the scale it was captured at (smaller after ``low_resolution``), with
the five landmarks and the confidence of the face yuface (the default detector) finds
on it (``utility.find_face``). The pipeline aligns by its detector's landmarks on the
degraded frame, and those wander as the face degrades; where yuface misses the face,
the framing the sighting was cut to stands in, with confidence 0. ``ideal_landmarks``
hands every sighting that framing instead (where the clean photo's landmarks were
aligned to, untouched by the degradation), which flatters every score that reads the
landmarks (alignment, pose). Then it is scored by the fused default scorer, each
shipped model alone, every weight-free component, the Laplacian variance of the
aligned face and a random order, and every score is judged by ``utility_eval.report``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.utility_eval import (
    BOOTSTRAP_COVERAGE,
    BOOTSTRAP_DRAWS,
    HeldOut,
    is_utility_folder,
    load_held_out,
    markdown_table,
    paired_by_person,
    paired_person_bootstrap,
    paired_table,
    per_degradation_table,
    person_pair_table,
    report,
)
from fiqa_stream.types import Face

if TYPE_CHECKING:
    from fiqa_stream.scorers.training.fusion import FittingSightings

_CHUNK = 256


def sighting_face(image: np.ndarray, scale: float = 1.0, ideal_landmarks: bool = False) -> Face:
    """The ``Face`` the pipeline would hand the scorer for a 224-px sighting captured at ``scale``.

    Args:
        image: the sighting, BGR uint8.
        scale: the scale the face was captured at (the sighting is shrunk to it).
        ideal_landmarks: give the framing the sighting was cut to as its landmarks
            instead of those yuface finds (the module docstring says why not by default).
    """
    from fiqa_stream.scorers.training.utility import SIGHTING_BOX, SIGHTING_LANDMARKS, as_captured, find_face

    small = as_captured(image, scale)
    landmarks, confidence = find_face(small)
    if landmarks is None or ideal_landmarks:
        landmarks = SIGHTING_LANDMARKS * scale
    return Face(small, np.array(SIGHTING_BOX, np.float32) * scale, confidence, landmarks)


def read_sighting(held: HeldOut, index: int) -> np.ndarray:
    """The held-out sighting ``index`` (BGR uint8).

    Raises:
        OSError: the image cannot be read.
        ConfigError: it is not a whole sighting (``train/`` and ``val/`` hold training crops).
    """
    from fiqa_stream.scorers.training.utility import SIGHTING_SIZE

    path = held.root / held.names[index]
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read {path}")
    if image.shape[:2] != (SIGHTING_SIZE, SIGHTING_SIZE):
        raise ConfigError(f"{path}: {image.shape[1]}x{image.shape[0]} px, but a held-out sighting is "
                          f"{SIGHTING_SIZE}x{SIGHTING_SIZE} (give test/, fusion/ or fusion-val/ of "
                          "`fiqa-stream dataset`; train/ and val/ hold training crops)")
    return image


def held_out_faces(held: HeldOut, start: int = 0, stop: int | None = None,
                   ideal_landmarks: bool = False) -> list[Face]:
    """The ``Face`` of every held-out sighting in ``[start, stop)`` (see ``sighting_face``)."""
    return [sighting_face(read_sighting(held, i), float(held.scale[i]), ideal_landmarks)
            for i in range(start, len(held) if stop is None else stop)]


def turned_model_scores(held: HeldOut, model: str, degrees: float) -> np.ndarray:
    """The model alone on crops cut by each sighting's framing turned by ``degrees``, alternately
    either way: what a detector whose landmarks leave the face tilted costs the model.

    The eval's own landmarks are found where the eyes are about 70 px apart, where yuface's
    roll is good; in a whole frame, on a small face, it can be tens of degrees off level.
    """
    from fiqa_stream.scorers.align import turned
    from fiqa_stream.scorers.config import FiqaScorerConfig
    from fiqa_stream.scorers.fiqa import FiqaScorer, aligned_crops
    from fiqa_stream.scorers.training.utility import SIGHTING_BOX, SIGHTING_LANDMARKS, as_captured

    scorer = FiqaScorer(FiqaScorerConfig.model_validate({"model": model}))
    scores = []
    for start in range(0, len(held), _CHUNK):
        faces = []
        for i in range(start, min(start + _CHUNK, len(held))):
            scale = float(held.scale[i])
            landmarks = turned(SIGHTING_LANDMARKS * scale, degrees if i % 2 else -degrees)
            faces.append(Face(as_captured(read_sighting(held, i), scale), np.array(SIGHTING_BOX, np.float32) * scale,
                              1.0, landmarks))
        scores.append(scorer.model_scores(aligned_crops(faces, scorer.input_size)))
    return np.concatenate(scores)


def laplacian_variance(crops: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each aligned 112-px face crop (the classic focus measure)."""
    out = []
    for crop in crops:
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        out.append(float(cv2.Laplacian(grey, cv2.CV_64F).var()))
    return np.array(out)


def default_model() -> str:
    """The model of the default scorer (``FiqaScorerConfig``'s ``model``)."""
    from fiqa_stream.scorers.config import FiqaScorerConfig

    return str(FiqaScorerConfig.model_fields["model"].default)


def score_held_out(held: HeldOut, default: str, models: Sequence[str] | None = None,
                   weights: dict[str, float] | None = None, ideal_landmarks: bool = False) -> dict[str, np.ndarray]:
    """Every score of every held-out sighting, by name (``fused``, ``model:<name>``, components, ...).

    Args:
        held: the held-out sightings.
        default: the fused scorer's model: a shipped name or an ONNX file (``FiqaScorerConfig.model``).
        models: models scored alone as well; those with fitted fusion weights are also
            scored fused (``fused:<name>``); None: ``default`` and every shipped model.
        weights: fusion weights overriding the fused scorer's defaults.
        ideal_landmarks: see ``sighting_face``.
    """
    from fiqa_stream.scorers.align import TEMPLATE_SIZE
    from fiqa_stream.scorers.config import FiqaScorerConfig
    from fiqa_stream.scorers.fiqa import FUSED, FiqaScorer, aligned_crops
    from fiqa_stream.scorers.model_file import scorer_model
    from fiqa_stream.scorers.weights import SHIPPED

    def config(model: str, fusion: dict[str, float] | None = None, precision: str = "auto") -> FiqaScorerConfig:
        return FiqaScorerConfig.model_validate({"model": model, "precision": precision}
                                               | ({} if fusion is None else {"weights": fusion}))

    read_sighting(held, 0)  # a folder of training crops fails here, before any model loads
    if models is None:
        models = tuple(SHIPPED) if default in SHIPPED else (default, *SHIPPED)
    fused = FiqaScorer(config(default, weights))
    alone = {m: fused if m == default else FiqaScorer(config(m)) for m in models}
    # Where the CPU runs a model's integer version, its float version is judged beside it.
    alone |= {f"{m}:float32": FiqaScorer(config(m, precision="float32"))
              for m in models if scorer_model(m).int8_onnx_sha256 is not None}
    others = [m for m in models if m != default and weights is None and scorer_model(m).fusion_weights() is not None]
    columns: dict[str, list[float]] = {name: [] for name in ("fused", *[f"fused:{m}" for m in others],
                                                              *[f"model:{m}" for m in alone], *FUSED[1:],
                                                              "laplacian_variance")}
    for start in range(0, len(held), _CHUNK):
        faces = held_out_faces(held, start, min(start + _CHUNK, len(held)), ideal_landmarks)
        qualities = fused.score(faces)
        columns["fused"].extend(q.score for q in qualities)
        for m in others:
            columns[f"fused:{m}"].extend(q.score for q in alone[m].score(faces))
        for name in FUSED[1:]:
            columns[name].extend(q.components[name] for q in qualities)
        # Every model sees the same aligned crops at its input side: align once per side.
        crops = {size: aligned_crops(faces, size) for size in {TEMPLATE_SIZE, *(s.input_size for s in alone.values())}}
        for m, scorer in alone.items():
            columns[f"model:{m}"].extend(scorer.model_scores(crops[scorer.input_size]).tolist())
        columns["laplacian_variance"].extend(laplacian_variance(crops[TEMPLATE_SIZE]).tolist())
    out = {name: np.array(values) for name, values in columns.items()}
    out["random"] = np.random.default_rng(0).random(len(held))
    return out


def run(data: Path, model: str | None, as_json: bool, against: str | None = None) -> int:
    """The ``eval`` command on a utility folder: print the table (or JSON).

    With ``against``, also the difference of the fused score from ``against``'s fused
    score over held-out people drawn with replacement (``paired_person_bootstrap``), and
    both fused scores' Spearman within each held-out person (``paired_by_person``).
    """
    model = model or default_model()
    held = load_held_out(data)
    scores = score_held_out(held, model)
    reports = {name: report(values, held) for name, values in scores.items()}
    differences = None
    people = []
    if against is not None:
        other = score_held_out(held, against, models=())["fused"]
        differences = paired_person_bootstrap(other, scores["fused"], held)
        people = paired_by_person(other, scores["fused"], held)
    if as_json:
        print(json.dumps({
            "data": str(data), "sightings": len(held), "identities": int(len(set(held.identity.tolist()))),
            "threshold_fmr_1e-3": held.threshold,
            "scores": {name: {"spearman": r.spearman, "per_degradation": r.per_degradation,
                              "fnmr": {str(k): v for k, v in r.fnmr.items()}, "erc_area": r.erc_area,
                              "hit_at_2": r.hit_at_2,
                              "within_person": {k: None if np.isnan(v) else v for k, v in r.within_person.items()}}
                       for name, r in reports.items()},
        } | ({} if differences is None else {"against": {
            "model": against, "coverage": BOOTSTRAP_COVERAGE,
            "fused_minus_against": {name: vars(d) for name, d in differences.items()},
            "within_each_person": [vars(p) for p in people]}}), indent=2))
        return 0
    print(f"{data}: {len(held)} held-out sightings of {len(set(held.identity.tolist()))} identities; "
          f"dlib threshold at FMR 1e-3: {held.threshold:.3f}")
    print(markdown_table(reports))
    print()
    print(per_degradation_table(reports))
    print()
    print("Within one person (the ranking best-shot selection uses: one person's sightings of a degradation):")
    print(per_degradation_table(reports, one_person=True))
    if against is not None and differences is not None:
        print()
        print(f"Fused against {against}'s fused score, over held-out people drawn with replacement "
              f"({BOOTSTRAP_DRAWS} draws):")
        print(paired_table(differences, against, model))
        print()
        print("Fused, Spearman with utility within each held-out person (the ranking a track's best shot needs):")
        print(person_pair_table(people, against, model))
    return 0


def fitting_sightings(held: HeldOut, model: str) -> FittingSightings:
    """The model's and every weight-free component's scores on a utility folder, to fit fusion weights on."""
    from fiqa_stream.scorers.config import FiqaWeights
    from fiqa_stream.scorers.fiqa import FUSED
    from fiqa_stream.scorers.training.fusion import FittingSightings

    # Score with a fixed, known fusion: only the components are used here.
    scores = score_held_out(held, model, models=(model,), weights=FiqaWeights().model_dump())
    components = {"model": scores[f"model:{model}"], **{name: scores[name] for name in FUSED[1:]}}
    return FittingSightings(components, held.utility, held.identity * 10_000 + held.photo * 100 + held.view)


def fit(data: Path, model: str, out: Path) -> int:
    """Fit the fusion weights of ``model`` against utility on a utility folder and write them to ``out``.

    On ``DATA/fusion-val`` the training identities in ``DATA/fusion`` beside it join the
    fit of the weight-free components' mix (``training.fusion.fit_fusion``)."""
    from fiqa_stream.scorers.fiqa import FUSED
    from fiqa_stream.scorers.training.fusion import fit_fusion, write_fusion

    training = data.parent / "fusion"
    with_training = data.name == "fusion-val" and is_utility_folder(training)
    held = load_held_out(data)
    unseen = fitting_sightings(held, model)
    seen = fitting_sightings(load_held_out(training), model) if with_training else None
    weights = fit_fusion(unseen, seen, FUSED)
    fused = np.sum([weights[n] * unseen.components[n] for n in FUSED], axis=0)
    spearman = report(fused, held).spearman
    fitted_on = f"{len(held)} sightings of {len(set(held.identity.tolist()))} identities (DATA/{data.name})"
    if with_training:
        fitted_on += "; the weight-free components' mix also on the training identities (DATA/fusion)"
    write_fusion(out, weights, fitted_on, spearman)
    print(json.dumps({"weights": weights, "spearman_on_fit": spearman}, indent=2))
    return 0
