"""Fusion weights fitted against recognition utility on training identities.

The fused score is the weighted arithmetic mean of the model's score and the
weight-free components (``scorers/fiqa.py``). Only the weights' ratios change the
ranking, so they are fitted as a point on the simplex: non-negative least squares of
the utility on the components (plus a free intercept) gives the start, then
Nelder-Mead over softmax logits maximises the mean of two Spearman correlations of the
fused score with utility on the fitting sightings (the ``fusion/`` folder of
``utility.write_utility_folders``: whole sightings of training identities through
random camera chains, never the held-out ones): pooled over all sightings, and within
each face view (averaged over views). The pooled term alone is won by whatever tells
identities apart (pose, constant over a face's sightings, took 94 % of the weight when
fitted alone on 19 identities), which does nothing for choosing among one person's
sightings; the within-face term is what best-shot selection needs.

Components the fitting data cannot calibrate are held at a fixed share (``fixed``):
in the utility data every sighting of a face view has the same pose, so pose varies
only between identities and its weight would measure how the 19 training people
happen to differ, not what turning the head costs. Pose is therefore kept at its
default share and the others are fitted around it. Weights under 1 % are set to 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import optimize

from fiqa_stream.scorers.training.metrics import spearman

MIN_WEIGHT = 0.01


def fit_weights(components: Mapping[str, np.ndarray], utility: np.ndarray, names: Sequence[str],
                groups: np.ndarray | None = None, fixed: Mapping[str, float] | None = None) -> dict[str, float]:
    """Non-negative weights (summing to 1) of ``names`` whose weighted mean best ranks ``utility``.

    Args:
        components: each component's scores on the fitting sightings.
        utility: the sightings' utility labels.
        names: the components to weigh, in the fused scorer's order.
        groups: a face-view label per sighting; when given, the within-group Spearman
            (mean over groups) counts as much as the pooled one.
        fixed: components held at a given share of the total (the rest share the remainder).
    """
    fixed = dict(fixed or {})
    held = sum(fixed.values())
    if held >= 1.0 or any(v < 0 for v in fixed.values()):
        raise ValueError(f"fixed shares must be non-negative and sum below 1, got {fixed}")
    base = sum(fixed[n] * np.asarray(components[n], np.float64) for n in fixed)
    free = [n for n in names if n not in fixed]
    table = np.stack([np.asarray(components[n], np.float64) for n in free], axis=1)
    target = np.asarray(utility, np.float64)
    design = np.hstack([table, np.ones((len(target), 1)), -np.ones((len(target), 1))])
    start, _ = optimize.nnls(design, target)
    start = start[: len(free)]
    if start.sum() <= 0:
        start = np.ones(len(free))
    logits0 = np.log(np.maximum(start / start.sum(), 1e-3))

    members = [] if groups is None else [np.flatnonzero(groups == g) for g in np.unique(groups)]
    members = [m for m in members if len(m) > 2]

    def objective(fused: np.ndarray) -> float:
        pooled = spearman(fused, target)
        if not members:
            return pooled
        return 0.5 * pooled + 0.5 * float(np.mean([spearman(fused[m], target[m]) for m in members]))

    def loss(logits: np.ndarray) -> float:
        w = np.exp(logits - logits.max())
        return -objective(base + (1.0 - held) * (table @ (w / w.sum())))

    best = optimize.minimize(loss, logits0, method="Nelder-Mead",
                             options={"maxiter": 1500, "xatol": 1e-3, "fatol": 1e-5})
    logits = best.x if best.fun <= loss(logits0) else logits0
    w = np.exp(logits - logits.max())
    w = (1.0 - held) * w / w.sum()
    w[w < MIN_WEIGHT] = 0.0
    w *= (1.0 - held) / w.sum()
    out = dict(zip(free, map(float, w), strict=True)) | fixed
    return {n: round(float(out[n]), 4) for n in names}


def write_fusion(path: Path, weights: Mapping[str, float], fitted_on: str, spearman_on_fit: float) -> None:
    """Store fitted weights beside a shipped model (``<version>.fusion.json``)."""
    path.write_text(json.dumps({"weights": dict(weights), "fitted_on": fitted_on,
                                "spearman_on_fit": round(spearman_on_fit, 4)}, indent=2) + "\n", encoding="utf-8")
