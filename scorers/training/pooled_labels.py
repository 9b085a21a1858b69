"""Utility labels pooled over people: what a degradation costs recognition, not whose face it is.

A sighting's recognition utility mixes two things: how much its degradation hurts the
recogniser, and how well the recogniser knows that person's face at all (a person whose
reference photos differ in pose and light scores lower even when clean). An image-only
score can learn the first; the second it can only memorise per training face, and on
people it has never seen it comes out as an arbitrary offset (the distilled student
scored clean held-out faces anywhere from 0.66 to 0.99 where their utility was 0.99 to
1). Pooling replaces part of each label by the mean utility of the ``neighbours``
sightings of *other* identities through the same degradations at the nearest
strengths, so the label keeps the degradation's cost and loses the face.

Only folders written by ``fiqa-stream dataset`` can be pooled: their ``sightings.csv``
records each sighting's identity and camera chain (``utility.write_utility_samples``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.data import ScoredImage
from fiqa_stream.scorers.training.utility import SIGHTINGS_CSV


@dataclass(frozen=True)
class Sighting:
    """One labelled sighting: whose face, which degradations at which strengths, its utility."""

    path: Path
    identity: int
    strengths: dict[str, float]
    utility: float


def parse_chain(chain: str) -> dict[str, float]:
    """``"defocus_blur:0.47 underexposure:0.96"`` → degradation → strength (empty for a clean sighting)."""
    strengths: dict[str, float] = {}
    for step in chain.split():
        name, _, strength = step.partition(":")
        strengths[name] = float(strength)
    return strengths


def read_sightings(folder: Path) -> list[Sighting]:
    """The sightings of a utility folder (paths resolved, as ``scored_images`` gives them).

    Raises:
        ConfigError: the folder has no ``sightings.csv`` or a row cannot be read.
    """
    path = folder / SIGHTINGS_CSV
    if not path.is_file():
        raise ConfigError(f"pooled_labels: {folder} has no {SIGHTINGS_CSV} (only folders written by "
                          "`fiqa-stream dataset` record whose face each sighting shows)")
    root = folder.resolve()
    with path.open(newline="", encoding="utf-8") as handle:
        try:
            return [Sighting(root / row["image_name"], int(row["identity"]), parse_chain(row["chain"]),
                             float(row["utility"])) for row in csv.DictReader(handle)]
        except (KeyError, ValueError) as e:
            raise ConfigError(f"pooled_labels: {path}: unreadable row ({e})") from None


def pooled_utility(sightings: Sequence[Sighting], neighbours: int) -> np.ndarray:
    """Per sighting, the mean utility of the ``neighbours`` sightings of other identities nearest to it.

    Nearest means: through the same set of degradations, smallest Euclidean distance
    between their strengths (ties in file order). A sighting whose degradations no other
    identity went through keeps its own utility.
    """
    utility = np.array([s.utility for s in sightings])
    identity = np.array([s.identity for s in sightings])
    by_kind: dict[tuple[str, ...], list[int]] = {}
    for i, s in enumerate(sightings):
        by_kind.setdefault(tuple(sorted(s.strengths)), []).append(i)
    pooled = utility.copy()
    for kind, members in by_kind.items():
        rows = np.array(members)
        people = identity[rows]
        strengths = np.array([[sightings[i].strengths[k] for k in kind] for i in members]).reshape(len(rows), -1)
        for at, i in enumerate(rows):
            others = people != people[at]
            if not others.any():
                continue
            distance = ((strengths[others] - strengths[at]) ** 2).sum(axis=1)
            nearest = rows[others][np.argsort(distance, kind="stable")[:neighbours]]
            pooled[i] = utility[nearest].mean()
    return pooled


def pool_labels(items: Sequence[ScoredImage], folder: Path, share: float, neighbours: int) -> list[ScoredImage]:
    """``items`` (the labelled crops of ``folder``) with labels ``(1 − share)·own + share·pooled``.

    The items' labels are the ones pooled (a sighting no item names keeps the utility its
    folder records), so labels changed before pooling (``second_photo.py``) are pooled as they are.

    Raises:
        ConfigError: ``folder`` records no sightings, or an item is not among them.
    """
    own = {item.path: item.score for item in items}
    sightings = [replace(s, utility=own.get(s.path, s.utility)) for s in read_sightings(folder)]
    pooled = dict(zip((s.path for s in sightings), pooled_utility(sightings, neighbours).tolist(), strict=True))
    out = []
    for item in items:
        if item.path not in pooled:
            raise ConfigError(f"pooled_labels: {item.path.name} is not in {folder / SIGHTINGS_CSV}")
        out.append(ScoredImage(item.path, (1.0 - share) * item.score + share * pooled[item.path]))
    return out
