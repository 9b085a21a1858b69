"""Ranking pairs: one clean crop through one degradation at two severities, and the cost of their disorder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fiqa_stream.scorers.models.preprocess import crops_to_tensor
from fiqa_stream.scorers.training.monotone import MonotonePairs, disorder_loss


def test_each_pair_is_one_crop_darkened_less_and_more(aligned_face: np.ndarray) -> None:
    pairs = MonotonePairs([aligned_face], ["underexposure"], pairs=64, input_size=112, seed=0)
    milder, harsher = pairs.batch()
    assert milder.shape == harsher.shape == (64, 3, 112, 112)
    brightness_milder, brightness_harsher = milder.mean(dim=(1, 2, 3)), harsher.mean(dim=(1, 2, 3))
    assert bool((brightness_harsher < brightness_milder).all())


def test_about_half_the_milder_crops_are_the_clean_crop_itself(aligned_face: np.ndarray) -> None:
    pairs = MonotonePairs([aligned_face], ["defocus_blur"], pairs=200, input_size=112, seed=1)
    milder, _ = pairs.batch()
    clean = crops_to_tensor(aligned_face[None], 112)
    untouched = int((milder == clean).flatten(1).all(dim=1).sum())
    assert 70 <= untouched <= 130


def test_the_two_crops_of_a_pair_share_their_random_draws(aligned_face: np.ndarray) -> None:
    # Noise drawn alike grows with severity: the harsher crop is the milder one's noise, stronger.
    pairs = MonotonePairs([aligned_face], ["gaussian_noise"], pairs=16, input_size=112, seed=2)
    milder, harsher = pairs.batch()
    clean = crops_to_tensor(aligned_face[None], 112)
    for soft, hard in zip(milder - clean, harsher - clean, strict=True):
        if soft.abs().sum() > 0:
            assert float(torch.corrcoef(torch.stack([soft.flatten(), hard.flatten()]))[0, 1]) > 0.5


def test_every_draw_follows_the_seed(aligned_face: np.ndarray) -> None:
    first = MonotonePairs([aligned_face], ["motion_blur", "low_light"], pairs=4, input_size=64, seed=5).batch()
    again = MonotonePairs([aligned_face], ["motion_blur", "low_light"], pairs=4, input_size=64, seed=5).batch()
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_pairs_need_a_crop_and_known_degradations(aligned_face: np.ndarray) -> None:
    with pytest.raises(ValueError, match="at least one clean crop"):
        MonotonePairs([], ["defocus_blur"], pairs=1, input_size=64, seed=0)
    with pytest.raises(ValueError, match="unknown degradations \\['sepia'\\]"):
        MonotonePairs([aligned_face], ["sepia"], pairs=1, input_size=64, seed=0)


def test_the_disorder_loss_is_the_mean_amount_a_harsher_crop_scores_above_its_milder_one() -> None:
    milder = torch.tensor([0.9, 0.5, 0.4, 0.8])
    harsher = torch.tensor([0.7, 0.5, 0.6, 0.9])
    assert float(disorder_loss(milder, harsher)) == pytest.approx((0.2 + 0.1) / 4)
    assert float(disorder_loss(milder, milder - 0.1)) == 0.0
