"""Fusion weights fitted against recognition utility.

The fused score is the weighted arithmetic mean of the model's score and the
weight-free components (``scorers/fiqa.py``). Only the weights' ratios change the
ranking, so they are fitted as a point on the simplex: non-negative least squares of
the utility on the components (plus a free intercept) gives the start, then
Nelder-Mead over softmax logits maximises the mean of two Spearman correlations of the
fused score with utility on the fitting sightings: pooled over all sightings, and within
each face view (averaged over views). The pooled term alone is won by whatever tells
identities apart, which does nothing for choosing among one person's sightings; the
within-face term is what best-shot selection needs.

``fit_fusion`` fits in two levels, because the model has learnt its training identities
and the weight-free components have not. The components' mix is fitted on every person
at hand: the validation identities (``fusion-val/`` of
``utility.write_utility_folders``) and the training ones (``fusion/``), whole sightings
through random camera chains, never the held-out ones. Only the model's share of the
fused score (one number on a grid) is fitted on the validation identities, which no
model learnt from. Fitting all six weights on the 3 validation people alone overfits
them: cross-validated over people, that fused score ranked new people worse than the
model alone (model card, "Fusion weights").

The fitting faces carry the landmarks yuface finds on each degraded sighting
(``cli/evaluate.sighting_face``), so pose varies within a face as it does in the
pipeline: yuface's landmarks sit a median 0.14 of the eye distance from the framing
(0.25 at the 90th percentile of the held-out grid), and on a turned face they drift
towards a frontal one as the face darkens or breaks up, so the pose read from them rises
as the sighting gets worse. Weights under 1 % are set to 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize

from fiqa_stream.scorers.training.metrics import spearman

MIN_WEIGHT = 0.01
#: The model's shares of the fused score tried on the validation identities.
MODEL_SHARES = np.linspace(0.0, 1.0, 21)


@dataclass(frozen=True)
class FittingSightings:
    """Sightings to fit on: each score's values, the utility labels and a face-view label per sighting."""

    components: Mapping[str, np.ndarray]
    utility: np.ndarray
    groups: np.ndarray

    def __add__(self, other: FittingSightings) -> FittingSightings:
        return FittingSightings({n: np.concatenate([v, other.components[n]]) for n, v in self.components.items()},
                                np.concatenate([self.utility, other.utility]),
                                np.concatenate([self.groups, other.groups]))


def _face_views(groups: np.ndarray | None) -> list[np.ndarray]:
    members = [] if groups is None else [np.flatnonzero(groups == g) for g in np.unique(groups)]
    return [m for m in members if len(m) > 2]


def _agreement(fused: np.ndarray, target: np.ndarray, views: list[np.ndarray]) -> float:
    """Spearman with utility, pooled; with ``views``, the mean of that and the within-view mean."""
    pooled = spearman(fused, target)
    if not views:
        return pooled
    return 0.5 * pooled + 0.5 * float(np.mean([spearman(fused[m], target[m]) for m in views]))


def _rounded_weights(weights: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Non-negative ``weights`` of ``names`` scaled to sum to 1, those under ``MIN_WEIGHT`` set to 0."""
    w = weights / weights.sum()
    w[w < MIN_WEIGHT] = 0.0
    w /= w.sum()
    return {n: round(float(v), 4) for n, v in zip(names, w, strict=True)}


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

    views = _face_views(groups)

    def loss(logits: np.ndarray) -> float:
        w = np.exp(logits - logits.max())
        return -_agreement(table @ (w / w.sum()), target, views)

    best = optimize.minimize(loss, logits0, method="Nelder-Mead",
                             options={"maxiter": 1500, "xatol": 1e-3, "fatol": 1e-5})
    logits = best.x if best.fun <= loss(logits0) else logits0
    return _rounded_weights(np.exp(logits - logits.max()), names)


def fit_fusion(unseen: FittingSightings, seen: FittingSightings | None, names: Sequence[str],
               model: str = "model") -> dict[str, float]:
    """Fusion weights of ``names`` (``model`` among them): the weight-free components' mix
    fitted on ``unseen`` and ``seen`` together, the model's share on ``unseen`` alone.

    Args:
        unseen: sightings of identities the model never learnt from.
        seen: sightings of the identities it learnt from (None: only ``unseen``).
        names: every fused score, in the fused scorer's order.
        model: which of ``names`` is the model.
    """
    everyone = unseen if seen is None else unseen + seen
    others = [n for n in names if n != model]
    mix = fit_weights(everyone.components, everyone.utility, others, everyone.groups)
    mixed = np.sum([mix[n] * np.asarray(unseen.components[n], np.float64) for n in others], axis=0)
    scores = np.asarray(unseen.components[model], np.float64)
    views = _face_views(unseen.groups)
    share = max(MODEL_SHARES, key=lambda a: _agreement(a * scores + (1 - a) * mixed, unseen.utility, views))
    return _rounded_weights(np.array([share if n == model else (1 - share) * mix[n] for n in names]), names)


def write_fusion(path: Path, weights: Mapping[str, float], fitted_on: str, spearman_on_fit: float) -> None:
    """Store fitted weights beside a shipped model (``<version>.fusion.json``)."""
    path.write_text(json.dumps({"weights": dict(weights), "fitted_on": fitted_on,
                                "spearman_on_fit": round(spearman_on_fit, 4)}, indent=2) + "\n", encoding="utf-8")
