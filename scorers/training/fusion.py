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
identities apart, which does nothing for choosing among one person's sightings; the
within-face term is what best-shot selection needs.

The fitting faces carry the landmarks yuface finds on each degraded sighting
(``cli/evaluate.sighting_face``), so pose varies within a face as it does in the
pipeline: yuface's landmarks sit a median 0.14 of the eye distance from the framing
(0.25 at the 90th percentile of the held-out grid), and on a turned face they drift
towards a frontal one as the face darkens or breaks up, so the pose read from them rises
as the sighting gets worse. Pose is fitted like every other component (it was held at
its default share while the fitting faces carried ideal landmarks, in which it never
varied within a face; see the model card). Weights under 1 % are set to 0.
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
                groups: np.ndarray | None = None) -> dict[str, float]:
    """Non-negative weights (summing to 1) of ``names`` whose weighted mean best ranks ``utility``.

    Args:
        components: each component's scores on the fitting sightings.
        utility: the sightings' utility labels.
        names: the components to weigh, in the fused scorer's order.
        groups: a face-view label per sighting; when given, the within-group Spearman
            (mean over groups) counts as much as the pooled one.
    """
    table = np.stack([np.asarray(components[n], np.float64) for n in names], axis=1)
    target = np.asarray(utility, np.float64)
    design = np.hstack([table, np.ones((len(target), 1)), -np.ones((len(target), 1))])
    start, _ = optimize.nnls(design, target)
    start = start[: len(names)]
    if start.sum() <= 0:
        start = np.ones(len(names))
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
        return -objective(table @ (w / w.sum()))

    best = optimize.minimize(loss, logits0, method="Nelder-Mead",
                             options={"maxiter": 1500, "xatol": 1e-3, "fatol": 1e-5})
    logits = best.x if best.fun <= loss(logits0) else logits0
    w = np.exp(logits - logits.max())
    w /= w.sum()
    w[w < MIN_WEIGHT] = 0.0
    w /= w.sum()
    return {n: round(float(v), 4) for n, v in zip(names, w, strict=True)}


def write_fusion(path: Path, weights: Mapping[str, float], fitted_on: str, spearman_on_fit: float) -> None:
    """Store fitted weights beside a shipped model (``<version>.fusion.json``)."""
    path.write_text(json.dumps({"weights": dict(weights), "fitted_on": fitted_on,
                                "spearman_on_fit": round(spearman_on_fit, 4)}, indent=2) + "\n", encoding="utf-8")
