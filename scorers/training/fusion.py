"""Fusion weights fitted against recognition utility on training identities.

The fused score is the weighted arithmetic mean of the model's score and the
weight-free components (``scorers/fiqa.py``). Only the weights' ratios change the
ranking, so they are fitted as a point on the simplex: non-negative least squares of
the utility on the components (plus a free intercept) gives the start, then
Nelder-Mead over softmax logits maximises the Spearman correlation of the fused score
with utility on the fitting sightings (the ``fusion/`` folder of
``utility.write_utility_folders``: whole sightings of training identities through
random camera chains, never the held-out ones). Weights under 1 % are set to 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import optimize, stats

MIN_WEIGHT = 0.01


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return 0.0 if np.ptp(x) == 0 else float(stats.spearmanr(x, y)[0])


def fit_weights(components: Mapping[str, np.ndarray], utility: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Non-negative weights (summing to 1) of ``names`` whose weighted mean best ranks ``utility``.

    Args:
        components: each component's scores on the fitting sightings.
        utility: the sightings' utility labels.
        names: the components to weigh, in the fused scorer's order.
    """
    table = np.stack([np.asarray(components[n], np.float64) for n in names], axis=1)
    target = np.asarray(utility, np.float64)
    design = np.hstack([table, np.ones((len(target), 1)), -np.ones((len(target), 1))])
    start, _ = optimize.nnls(design, target)
    start = start[: len(names)]
    if start.sum() <= 0:
        start = np.ones(len(names))
    logits0 = np.log(np.maximum(start / start.sum(), 1e-3))

    def loss(logits: np.ndarray) -> float:
        w = np.exp(logits - logits.max())
        return -_spearman(table @ (w / w.sum()), target)

    best = optimize.minimize(loss, logits0, method="Nelder-Mead",
                             options={"maxiter": 1500, "xatol": 1e-3, "fatol": 1e-5})
    logits = best.x if best.fun <= loss(logits0) else logits0
    w = np.exp(logits - logits.max())
    w /= w.sum()
    w[w < MIN_WEIGHT] = 0.0
    w /= w.sum()
    return {n: round(float(v), 4) for n, v in zip(names, w, strict=True)}


def write_fusion(path: Path, weights: Mapping[str, float], fitted_on: str, spearman: float) -> None:
    """Store fitted weights beside a shipped model (``<version>.fusion.json``)."""
    path.write_text(json.dumps({"weights": dict(weights), "fitted_on": fitted_on,
                                "spearman_on_fit": round(spearman, 4)}, indent=2) + "\n", encoding="utf-8")
