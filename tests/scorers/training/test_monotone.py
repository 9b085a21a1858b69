"""Ranking pairs: one clean crop through one degradation at two severities, and the cost of their disorder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fiqa_stream.scorers.models.preprocess import crops_to_tensor
from fiqa_stream.scorers.training.monotone import MonotonePairs, PairBatch, disorder_loss
from fiqa_stream.scorers.training.recipe import Monotone


def _pairs(crop: np.ndarray, names: list[str], count: int, seed: int, *, size: int = 112) -> PairBatch:
    config = Monotone(weight=1.0, pairs=count, degradations=names)
    return MonotonePairs([crop], config, input_size=size, seed=seed).batch()


def test_each_pair_is_one_crop_darkened_less_and_more(aligned_face: np.ndarray) -> None:
    batch = _pairs(aligned_face, ["underexposure"], 64, seed=0)
    assert batch.milder.shape == batch.harsher.shape == (64, 3, 112, 112) and len(batch) == 64
    assert bool((batch.harsher.mean(dim=(1, 2, 3)) < batch.milder.mean(dim=(1, 2, 3))).all())
    assert bool(((batch.gaps > 0) & (batch.gaps <= 1)).all())


def test_about_half_the_milder_crops_are_the_clean_crop_itself(aligned_face: np.ndarray) -> None:
    batch = _pairs(aligned_face, ["defocus_blur"], 200, seed=1)
    clean = crops_to_tensor(aligned_face[None], 112)
    untouched = int((batch.milder == clean).flatten(1).all(dim=1).sum())
    assert 70 <= untouched <= 130


def test_the_two_crops_of_a_pair_share_their_random_draws(aligned_face: np.ndarray) -> None:
    # Noise drawn alike grows with severity: the harsher crop is the milder one's noise, stronger.
    batch = _pairs(aligned_face, ["gaussian_noise"], 16, seed=2)
    clean = crops_to_tensor(aligned_face[None], 112)
    for soft, hard in zip(batch.milder - clean, batch.harsher - clean, strict=True):
        if soft.abs().sum() > 0:
            assert float(torch.corrcoef(torch.stack([soft.flatten(), hard.flatten()]))[0, 1]) > 0.5


def test_every_draw_follows_the_seed(aligned_face: np.ndarray) -> None:
    first = _pairs(aligned_face, ["motion_blur", "low_light"], 4, seed=5, size=64)
    again = _pairs(aligned_face, ["motion_blur", "low_light"], 4, seed=5, size=64)
    assert all(torch.equal(a, b) for a, b in zip(vars(first).values(), vars(again).values(), strict=True))


def test_pairs_need_a_clean_crop() -> None:
    with pytest.raises(ValueError, match="at least one clean crop"):
        MonotonePairs([], Monotone(weight=1.0, degradations=["defocus_blur"]), input_size=64, seed=0)


def test_the_disorder_loss_is_the_mean_amount_a_harsher_crop_scores_above_its_milder_one() -> None:
    milder = torch.tensor([0.9, 0.5, 0.4, 0.8])
    harsher = torch.tensor([0.7, 0.5, 0.6, 0.9])
    assert float(disorder_loss(milder, harsher)) == pytest.approx((0.2 + 0.1) / 4)
    assert float(disorder_loss(milder, milder - 0.1)) == 0.0


def test_a_margin_asks_the_harsher_crop_to_score_lower_by_it() -> None:
    milder, harsher = torch.tensor([0.9, 0.9]), torch.tensor([0.85, 0.7])
    assert float(disorder_loss(milder, harsher, torch.tensor([0.1, 0.1]))) == pytest.approx(0.05 / 2)


def test_the_cost_weighs_the_disorder_and_scales_the_margin_by_the_severities_gap(aligned_face: np.ndarray) -> None:
    config = Monotone(weight=3.0, pairs=2, margin=0.2, degradations=["defocus_blur"])
    pairs = MonotonePairs([aligned_face], config, input_size=32, seed=0)
    batch = PairBatch(torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32), torch.tensor([0.5, 1.0]))
    cost = pairs.cost(torch.tensor([0.8, 0.8]), torch.tensor([0.8, 0.5]), batch)
    assert float(cost) == pytest.approx(3.0 * (0.1 + 0.0) / 2)
