"""A person with one photo is labelled as if a second photo of them were in the gallery."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.data import ScoredImage
from fiqa_stream.scorers.training.second_photo import CrossPhotoLaw, fit_law, second_photo_labels
from fiqa_stream.scorers.training.utility import DESCRIPTORS, SIGHTINGS_CSV, utility

IMPOSTOR = 0.7
# Distances of each view's sightings from its clean view (index 0 is the clean one).
DRIFTS = (0.0, 0.1, 0.3, 0.5)


def _axis(k: int) -> np.ndarray:
    v = np.zeros(128)
    v[k] = 1.0
    return v


def _folder(root: Path, photos: tuple[int, ...]) -> Path:
    """Persons with ``photos[i]`` photos each; photo p of person i sits at 0.4·e(10i + p), so two photos of one
    person are 0.4·√2 apart; every sighting drifts from its clean view along an axis of its own, across them."""
    root.mkdir(parents=True, exist_ok=True)
    rows, descriptors, gallery, gallery_ids = [], [], [], []
    for person, count in enumerate(photos):
        for photo in range(count):
            clean = 0.4 * _axis(10 * person + photo)
            gallery.append(clean)
            gallery_ids.append(person)
            for index, drift in enumerate(DRIFTS):
                descriptors.append(clean + drift * _axis(64 + 10 * person + photo))
                genuine = drift if count == 1 else float(np.mean([drift, np.hypot(0.4 * np.sqrt(2), drift)]))
                rows.append((f"p{person}-{photo}-{index}.png", person, photo, 0, index, genuine, IMPOSTOR,
                             float(utility(genuine, IMPOSTOR))))
    with (root / SIGHTINGS_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "identity", "photo", "view", "index", "genuine", "impostor", "utility"])
        writer.writerows(rows)
    np.savez(root / DESCRIPTORS, descriptors=np.array(descriptors, np.float32),
             identities=np.array([r[1] for r in rows]), gallery=np.array(gallery, np.float32),
             gallery_identities=np.array(gallery_ids))
    return root


def _items(root: Path) -> list[ScoredImage]:
    with (root / SIGHTINGS_CSV).open(newline="") as handle:
        return [ScoredImage(root / r["image_name"], float(r["utility"])) for r in csv.DictReader(handle)]


def test_the_law_is_fitted_on_the_people_with_several_photos(tmp_path: Path) -> None:
    # Drift across the line between two photos adds in quadrature: d(x, B)² = δ² + 1·d(x, A)².
    law = fit_law(_folder(tmp_path, (2, 1, 1)))
    assert law.delta == pytest.approx(0.4 * np.sqrt(2), abs=1e-5)
    assert law.c == pytest.approx(1.0, abs=1e-4)


def test_a_one_photo_person_loses_utility_to_a_mild_degradation_as_a_person_with_two_photos_does(
    tmp_path: Path,
) -> None:
    root = _folder(tmp_path, (2, 1))
    law = CrossPhotoLaw(delta=0.4 * np.sqrt(2), c=1.0)
    before = {i.path.name: i.score for i in _items(root)}
    after = {i.path.name: i.score for i in second_photo_labels(_items(root), root, law)}
    # Before: the one-photo person's mild drift cost nothing; the two-photo person's already did.
    assert before["p1-0-1.png"] > 0.99 > before["p0-0-1.png"]
    # After: the one-photo person is labelled exactly as the two-photo person at the same drift.
    for index in range(len(DRIFTS)):
        assert after[f"p1-0-{index}.png"] == pytest.approx(before[f"p0-0-{index}.png"], abs=1e-5)
    # The people with several photos keep their labels, and the order within a face holds.
    assert all(after[n] == before[n] for n in before if n.startswith("p0-"))
    assert [after[f"p1-0-{k}.png"] for k in range(len(DRIFTS))] == sorted(after[f"p1-0-{k}.png"] for k in
                                                                           range(len(DRIFTS)))[::-1]


def test_without_anyone_with_several_photos_there_is_nothing_to_fit_on(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no one in .* has several photos"):
        fit_law(_folder(tmp_path, (1, 1)))


def test_a_folder_without_descriptors_is_refused_by_name(tmp_path: Path) -> None:
    root = _folder(tmp_path, (2, 1))
    (root / DESCRIPTORS).unlink()
    with pytest.raises(ConfigError, match=f"second_photo: {root} has no {SIGHTINGS_CSV} and {DESCRIPTORS}"):
        fit_law(root)


def test_a_crop_missing_from_the_sightings_is_named(tmp_path: Path) -> None:
    root = _folder(tmp_path, (2, 1))
    with pytest.raises(ConfigError, match="stranger.png is not in"):
        second_photo_labels([ScoredImage(root / "stranger.png", 0.5)], root, CrossPhotoLaw(0.4, 1.0))
