"""Utility labels for people with one photo, as if they had a second one.

A sighting of a person with several photos is matched against their other photos too
(real pose and light change, ``utility.py``); a sighting of a person with one photo
only against the very photo it was cut from. So a mild degradation costs the second
kind nothing (their labels stay at 1) while the first already lose utility, and a score
learnt from the second kind misjudges the first.

The distance of a sighting ``x`` of photo ``A`` to another photo ``B`` of the same
person follows, on the people with several photos,

    d(x, B)² ≈ δ² + c · d(x, A)²,    δ = d(A, B)

(the drift a degradation causes lies partly across the line from ``A`` to ``B``: the
training folds' people with several photos give c 0.59-0.66, δ 0.40 at the median, a
median error of 0.02). A one-photo person's sighting gets that virtual second photo:
its ``genuine`` becomes the mean of ``d(x, A)`` and ``√(δ² + c · d(x, A)²)``, as for a
person with two photos, and its utility follows from it by ``utility.utility``. Both
δ (the median clean distance between photos) and c (least squares over the pairs) are
fitted on the folder's own people with several photos. Labels of people with several
photos are kept.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.data import ScoredImage
from fiqa_stream.scorers.training.utility import DESCRIPTORS, SIGHTINGS_CSV, utility


@dataclass(frozen=True)
class CrossPhotoLaw:
    """``d(x, B)² = δ² + c · d(x, A)²``: a sighting's distance to another photo of its person."""

    delta: float
    c: float

    def distance(self, own: np.ndarray) -> np.ndarray:
        """The distance to a second photo of a sighting ``own`` away from its own clean view."""
        return np.sqrt(self.delta**2 + self.c * np.asarray(own, np.float64) ** 2)


@dataclass(frozen=True)
class _Folder:
    """A utility folder's sightings: names, identity, photo, impostor distance, each sighting's descriptor and
    that of its own clean view; the clean gallery (one descriptor per photo, by identity in photo order)."""

    names: list[str]
    identity: np.ndarray
    photo: np.ndarray
    impostor: np.ndarray
    descriptors: np.ndarray
    own_clean: np.ndarray
    gallery: np.ndarray
    gallery_identities: np.ndarray

    @property
    def own(self) -> np.ndarray:
        """Each sighting's distance to its own clean view."""
        return np.linalg.norm(self.descriptors - self.own_clean, axis=1)

    def photos(self, person: int) -> np.ndarray:
        return self.gallery[self.gallery_identities == person]


def _read(folder: Path) -> _Folder:
    sightings, stored = folder / SIGHTINGS_CSV, folder / DESCRIPTORS
    if not sightings.is_file() or not stored.is_file():
        raise ConfigError(f"second_photo: {folder} has no {SIGHTINGS_CSV} and {DESCRIPTORS} "
                          "(only folders written by `fiqa-stream dataset` keep the descriptors)")
    with sightings.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    arrays = np.load(stored)
    descriptors = np.asarray(arrays["descriptors"], np.float64)
    if len(descriptors) != len(rows):
        raise ConfigError(f"second_photo: {stored} holds {len(descriptors)} descriptors for {len(rows)} sightings")
    key = [(r["identity"], r["photo"], r["view"]) for r in rows]
    clean = {k: descriptors[i] for i, (k, r) in enumerate(zip(key, rows, strict=True)) if r["index"] == "0"}
    own_clean = np.stack([clean[k] for k in key])
    return _Folder([r["image_name"] for r in rows], np.array([int(r["identity"]) for r in rows]),
                   np.array([int(r["photo"]) for r in rows]), np.array([float(r["impostor"]) for r in rows]),
                   descriptors, own_clean,
                   np.asarray(arrays["gallery"], np.float64), np.asarray(arrays["gallery_identities"]))


def fit_law(folder: Path) -> CrossPhotoLaw:
    """The cross-photo law fitted on the people with several photos in a ``fiqa-stream dataset`` folder.

    Raises:
        ConfigError: the folder keeps no descriptors, or no one in it has several photos.
    """
    data = _read(folder)
    distance_own = data.own
    own, between, actual = [], [], []
    for i in range(len(data.names)):
        photos = data.photos(int(data.identity[i]))
        others = np.delete(photos, int(data.photo[i]), axis=0)
        own += [distance_own[i]] * len(others)
        between += np.linalg.norm(others - data.own_clean[i], axis=1).tolist()
        actual += np.linalg.norm(others - data.descriptors[i], axis=1).tolist()
    if not actual:
        raise ConfigError(f"second_photo: no one in {folder} has several photos to fit the cross-photo law on")
    g, delta, d = np.array(own), np.array(between), np.array(actual)
    c = float(np.sum((d**2 - delta**2) * g**2) / max(float(np.sum(g**4)), 1e-12))
    return CrossPhotoLaw(float(np.median(delta)), c)


def second_photo_labels(items: list[ScoredImage], folder: Path, law: CrossPhotoLaw) -> list[ScoredImage]:
    """``items`` of ``folder`` with the one-photo people's labels given a virtual second photo by ``law``.

    Raises:
        ConfigError: the folder keeps no descriptors, or an item is not among its sightings.
    """
    data = _read(folder)
    one_photo = np.array([len(data.photos(int(p))) == 1 for p in data.identity])
    own = data.own
    genuine = 0.5 * (own + law.distance(own))
    relabelled = np.where(one_photo, utility(genuine, data.impostor), np.nan)
    by_name = dict(zip(data.names, relabelled.tolist(), strict=True))
    out = []
    for item in items:
        if item.path.name not in by_name:
            raise ConfigError(f"second_photo: {item.path.name} is not in {folder / SIGHTINGS_CSV}")
        label = by_name[item.path.name]
        out.append(item if np.isnan(label) else ScoredImage(item.path, float(label)))
    return out
