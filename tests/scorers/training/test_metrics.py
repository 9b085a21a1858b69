"""The evaluation metrics against hand-computed values and scipy's references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fiqa_stream.scorers.training import metrics
from fiqa_stream.scorers.training.metrics import evaluate, logistic4


def test_four_points_use_the_linear_map() -> None:
    # Centred p = [-1.5, -0.5, 0.5, 1.5], centred y = [-1.5, 0.5, -0.5, 1.5]: r = 4 / 5.
    # The fitted line 2.5 + 0.8 (p - 2.5) leaves residuals ±0.3, ±0.9: RMSE = √0.45.
    # Ranks differ by [0, 1, 1, 0]: SRCC = 1 - 6·2 / (4·15) = 0.8; KRCC = (5 - 1) / 6.
    result = evaluate([1, 2, 3, 4], [1, 3, 2, 4])
    assert not result.logistic
    assert result.plcc == pytest.approx(0.8)
    assert result.rmse == pytest.approx(np.sqrt(0.45))
    assert result.srcc == pytest.approx(0.8)
    assert result.krcc == pytest.approx(4 / 6)
    assert result.score == pytest.approx(0.8)
    assert result.count == 4


def test_rank_correlations_of_a_known_permutation() -> None:
    # Rank differences [-1, 1, -1, 1, 0]: SRCC = 1 - 6·4 / (5·24) = 0.8; 2 of 10 pairs discordant: KRCC = 0.6.
    result = evaluate([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert result.srcc == pytest.approx(0.8)
    assert result.krcc == pytest.approx(0.6)


def test_the_logistic_fit_straightens_a_logistic_response() -> None:
    x = np.linspace(0, 1, 41)
    y = logistic4(x, 5.0, 1.0, 0.5, 0.1)
    result = evaluate(x, y)
    assert result.logistic
    assert result.plcc == pytest.approx(1.0, abs=1e-6)
    assert result.rmse == pytest.approx(0.0, abs=1e-4)
    assert stats.pearsonr(x, y)[0] < 0.99  # the raw response is not linear


def test_metrics_match_scipy_on_noisy_data() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(300)
    p = np.tanh(2 * y) + 0.1 * rng.standard_normal(300)
    result = evaluate(p, y)
    assert result.srcc == pytest.approx(stats.spearmanr(p, y)[0])
    assert result.krcc == pytest.approx(stats.kendalltau(p, y)[0])
    assert result.plcc >= stats.pearsonr(p, y)[0] - 1e-9
    assert result.score == pytest.approx((result.srcc + result.plcc) / 2)


@pytest.mark.parametrize("size", [2, 3, 8, 27, 400])
def test_spearman_and_its_ranks_match_scipy_on_tied_and_untied_series(size: int) -> None:
    rng = np.random.default_rng(size)
    for _ in range(50):
        tied, untied = rng.integers(0, 4, size).astype(float), rng.standard_normal(size)
        np.testing.assert_allclose(metrics.average_ranks(tied), stats.rankdata(tied))
        np.testing.assert_allclose(metrics.average_ranks(untied), stats.rankdata(untied))
        for a, b in ((tied, untied), (untied, tied), (untied, -untied + 0.01 * rng.standard_normal(size))):
            expected = stats.spearmanr(a, b)[0] if np.ptp(a) and np.ptp(b) else 0.0
            assert metrics.spearman(a, b) == pytest.approx(expected, abs=1e-12)


def test_a_failed_fit_falls_back_to_plain_pearson(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(metrics.optimize, "curve_fit", fail)
    rng = np.random.default_rng(1)
    y = rng.random(50)
    p = y**2 + 0.05 * rng.standard_normal(50)
    result = evaluate(p, y)
    assert not result.logistic
    assert result.plcc == pytest.approx(stats.pearsonr(p, y)[0])


def test_constant_predictions_correlate_zero_not_nan() -> None:
    result = evaluate([0.5] * 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert (result.srcc, result.plcc, result.krcc) == (0.0, 0.0, 0.0)
    assert result.rmse == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))


@pytest.mark.parametrize(("p", "y"), [([1, 2], [1, 2, 3]), ([1], [1]), ([1, np.nan, 3], [1, 2, 3])])
def test_bad_inputs_are_refused(p: list[float], y: list[float]) -> None:
    with pytest.raises(ValueError):
        evaluate(p, y)


def test_metrics_serialise_to_a_dict() -> None:
    assert set(evaluate([1, 2, 3], [1, 2, 3]).as_dict()) == {
        "srcc", "plcc", "krcc", "rmse", "score", "logistic", "count"
    }
