"""Pooled utility labels keep what a degradation costs recognition and drop whose face it is."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.data import ScoredImage
from fiqa_stream.scorers.training.pooled_labels import parse_chain, pool_labels, pooled_utility, read_sightings
from fiqa_stream.scorers.training.utility import SIGHTINGS_CSV

# name, identity, chain, utility
ROWS = [
    ("a-clean", 1, "", 0.99),
    ("a-blur-weak", 1, "defocus_blur:0.20", 0.90),
    ("a-blur-strong", 1, "defocus_blur:0.90", 0.30),
    ("b-clean", 2, "", 0.95),
    ("b-blur-weak", 2, "defocus_blur:0.25", 0.70),
    ("b-blur-strong", 2, "defocus_blur:0.80", 0.10),
    ("c-blur-weak", 3, "defocus_blur:0.10", 0.80),
    ("c-noise", 3, "gaussian_noise:0.50", 0.60),
]


def _folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / SIGHTINGS_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "identity", "chain", "utility"])
        writer.writerows((f"{name}.png", identity, chain, utility) for name, identity, chain, utility in ROWS)
    return root


def _items(root: Path) -> list[ScoredImage]:
    return [ScoredImage(root.resolve() / f"{name}.png", utility) for name, _, _, utility in ROWS]


def test_a_chain_reads_as_degradation_strengths() -> None:
    assert parse_chain("defocus_blur:0.47 underexposure:0.96") == {"defocus_blur": 0.47, "underexposure": 0.96}
    assert parse_chain("") == {}


def test_each_label_pools_other_people_through_the_same_degradation_at_the_nearest_strengths(
    tmp_path: Path,
) -> None:
    pooled = dict(zip([r[0] for r in ROWS], pooled_utility(read_sightings(_folder(tmp_path)), neighbours=1),
                      strict=True))
    assert pooled["a-clean"] == pytest.approx(0.95)  # b's clean sighting, never a's own
    assert pooled["a-blur-weak"] == pytest.approx(0.70)  # b at 0.25 is nearer than c at 0.10
    assert pooled["a-blur-strong"] == pytest.approx(0.10)
    assert pooled["c-blur-weak"] == pytest.approx(0.90)  # a at 0.20 is nearer than b at 0.25


def test_more_neighbours_average_more_people(tmp_path: Path) -> None:
    pooled = pooled_utility(read_sightings(_folder(tmp_path)), neighbours=2)
    assert pooled[1] == pytest.approx((0.70 + 0.80) / 2)  # a-blur-weak: b-blur-weak and c-blur-weak


def test_a_degradation_no_other_person_went_through_keeps_its_own_utility(tmp_path: Path) -> None:
    assert pooled_utility(read_sightings(_folder(tmp_path)), neighbours=4)[-1] == pytest.approx(0.60)


def test_the_share_mixes_own_and_pooled_utility(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    own = pool_labels(_items(root), root, share=0.0, neighbours=1)
    half = pool_labels(_items(root), root, share=0.5, neighbours=1)
    assert [i.score for i in own] == pytest.approx([r[3] for r in ROWS])
    assert half[0].score == pytest.approx((0.99 + 0.95) / 2)
    assert [i.path for i in half] == [i.path for i in own]


def test_the_labels_pooled_are_the_items_not_the_folders_record(tmp_path: Path) -> None:
    # A label changed before pooling (second_photo.py) is what the other people's sightings pool.
    root = _folder(tmp_path)
    items = [ScoredImage(i.path, 0.5) if i.path.name == "b-clean.png" else i for i in _items(root)]
    assert pool_labels(items, root, share=1.0, neighbours=1)[0].score == pytest.approx(0.5)


def test_a_folder_without_sightings_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"pooled_labels: {tmp_path} has no {SIGHTINGS_CSV}"):
        pool_labels([], tmp_path, share=1.0, neighbours=4)


def test_a_crop_missing_from_the_sightings_is_named(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    stranger = ScoredImage(root.resolve() / "stranger.png", 0.5)
    with pytest.raises(ConfigError, match="stranger.png is not in"):
        pool_labels([stranger], root, share=1.0, neighbours=4)
