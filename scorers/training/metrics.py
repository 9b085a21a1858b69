"""Evaluation metrics of FIQA: SRCC, PLCC after a 4-parameter logistic fit, KRCC, RMSE, challenge score.

PLCC and RMSE follow the VQEG practice (and seed 002's evaluation code): predictions
are first mapped to the label scale by the monotonic logistic

    f(x) = β2 + (β1 − β2) / (1 + exp(−(x − β3) / |β4|))

fitted by least squares, starting from β1 = max(labels), β2 = min(labels),
β3 = mean(predictions), β4 = std(predictions). When the fit fails (too few points,
no convergence) a linear least-squares map is used instead, which gives the plain
Pearson correlation. SRCC and KRCC are rank measures and take the raw predictions.
The VQualA challenge score is (SRCC + PLCC) / 2.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats

logger = logging.getLogger(__name__)

_MIN_FIT_POINTS = 5


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two series; 0, not NaN, when either is constant.

    The Pearson correlation of the average ranks, as ``scipy.stats.spearmanr`` computes
    it, without its checks: evaluation's paired draws call this tens of thousands of
    times on short series, where those checks took most of the time."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    x, y = average_ranks(a), average_ranks(b)
    x -= x.mean()
    y -= y.mean()
    return float(np.clip(x @ y / math.sqrt((x @ x) * (y @ y)), -1.0, 1.0))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    bounds = np.append(np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1]))), len(values))
    group_mean = (bounds[:-1] + bounds[1:] + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(group_mean, np.diff(bounds))
    return ranks


def logistic4(x: np.ndarray, beta1: float, beta2: float, beta3: float, beta4: float) -> np.ndarray:
    """The 4-parameter logistic ``β2 + (β1 − β2) / (1 + exp(−(x − β3)/|β4|))``."""
    z = np.clip(-(x - beta3) / max(abs(beta4), 1e-12), -500.0, 500.0)
    return beta2 + (beta1 - beta2) / (1.0 + np.exp(z))


def fit_logistic(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """``predictions`` mapped to the label scale by a fitted ``logistic4``, or None if the fit fails."""
    if predictions.size < _MIN_FIT_POINTS or np.ptp(predictions) == 0:
        return None
    start = [float(labels.max()), float(labels.min()), float(predictions.mean()), float(predictions.std()) or 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(logistic4, predictions, labels, p0=start, maxfev=20_000)
    except (RuntimeError, ValueError) as e:
        logger.info("logistic fit failed (%s); using a linear map", e)
        return None
    mapped = logistic4(predictions, *params)
    return mapped if np.all(np.isfinite(mapped)) else None


def fit_linear(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``predictions`` mapped to the label scale by least-squares ``a·x + b``."""
    if np.ptp(predictions) == 0:
        return np.full_like(labels, labels.mean())
    slope, intercept = np.polyfit(predictions, labels, 1)
    return slope * predictions + intercept


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.pearsonr(a, b)[0])


@dataclass(frozen=True)
class Metrics:
    """Agreement of predictions with labels.

    Attributes:
        srcc: Spearman rank correlation.
        plcc: Pearson correlation after the logistic (or, failing it, linear) map.
        krcc: Kendall rank correlation (tau-b).
        rmse: root-mean-square error after the same map, on the label scale.
        score: the challenge score, (srcc + plcc) / 2.
        logistic: whether the logistic fit was used (False: the linear fallback).
        count: number of samples.
    """

    srcc: float
    plcc: float
    krcc: float
    rmse: float
    score: float
    logistic: bool
    count: int

    def as_dict(self) -> dict[str, float | bool | int]:
        return asdict(self)


def evaluate(predictions: np.ndarray | list[float], labels: np.ndarray | list[float]) -> Metrics:
    """All metrics of ``predictions`` against ``labels``.

    Rank correlations of constant inputs are reported as 0, not NaN.

    Raises:
        ValueError: the inputs differ in length, hold fewer than 2 values or non-finite ones.
    """
    pred = np.asarray(predictions, dtype=np.float64).ravel()
    true = np.asarray(labels, dtype=np.float64).ravel()
    if pred.shape != true.shape or pred.size < 2:
        raise ValueError(f"need two equally long series of at least 2 values, got {pred.size} and {true.size}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(true))):
        raise ValueError("predictions and labels must be finite")
    mapped = fit_logistic(pred, true)
    logistic = mapped is not None
    if mapped is None:
        mapped = fit_linear(pred, true)
    constant = np.ptp(pred) == 0 or np.ptp(true) == 0
    srcc = spearman(pred, true)
    krcc = 0.0 if constant else float(stats.kendalltau(pred, true)[0])
    plcc = _correlation(mapped, true)
    rmse = math.sqrt(float(np.mean((mapped - true) ** 2)))
    return Metrics(srcc, plcc, krcc, rmse, (srcc + plcc) / 2, logistic, int(pred.size))
