"""How well quality scores predict recognition: Spearman vs utility, error-versus-reject, best-of-8.

Reads a held-out utility folder (``utility.write_utility_folders``' ``test/``: whole
224-px sightings, ``sightings.csv``, ``descriptors.npz``) and judges any scores given
to its sightings:

* **Spearman** of the scores with the utility labels, pooled and per degradation; and
  per degradation within one person (``within_person``), the ranking best-shot
  selection needs.
* **ERC** (error versus reject, Grother and Tabassi 2007): the decision threshold is
  fixed once at FMR 1e-3 over every impostor comparison (each sighting's descriptor
  against every clean photo of every other identity); the genuine comparison of a
  sighting is its ``genuine`` distance (mean over the identity's clean photos). The
  sightings of lowest quality are rejected, 0 to 50 %, and the FNMR of the rest is
  read. Reported at 0/10/20/30/50 %; the *ERC area* is the mean FNMR over rejection
  0-50 % in 1 % steps (lower is better).
* **best-of-8 hit@2**: within the sightings of one face view and one degradation (the
  8 strengths), the one scored highest must be among the 2 of highest utility.

Ties in the scores are broken by sample order for ERC (stable sort) and by the first
maximum for best-of-8, so constant scores get no credit they did not earn.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.metrics import average_ranks, spearman
from fiqa_stream.scorers.training.recognition import distances
from fiqa_stream.scorers.training.utility import DESCRIPTORS, SIGHTINGS_CSV, utility

REJECT_POINTS = (0.0, 0.1, 0.2, 0.3, 0.5)
TARGET_FMR = 1e-3
GROUP_SIZE = 8


@dataclass(frozen=True)
class HeldOut:
    """The held-out sightings and their recogniser measurements, in file order."""

    root: Path
    names: list[str]
    identity: np.ndarray
    photo: np.ndarray
    view: np.ndarray
    degradation: list[str]
    severity: np.ndarray
    scale: np.ndarray
    genuine: np.ndarray
    utility: np.ndarray
    threshold: float

    def __len__(self) -> int:
        return len(self.names)


def is_utility_folder(path: Path) -> bool:
    """Whether ``path`` is a folder written by ``write_utility_samples``."""
    return Path(path).is_dir() and (Path(path) / SIGHTINGS_CSV).is_file() and (Path(path) / DESCRIPTORS).is_file()


def load_held_out(root: Path) -> HeldOut:
    """Read a utility folder and fix the FMR 1e-3 threshold from its impostor comparisons.

    Raises:
        ConfigError: the folder is not a utility folder.
    """
    root = Path(root)
    if not is_utility_folder(root):
        raise ConfigError(f"{root} holds no {SIGHTINGS_CSV} and {DESCRIPTORS} (write one with `fiqa-stream dataset`)")
    with (root / SIGHTINGS_CSV).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    identity = np.array([int(r["identity"]) for r in rows])
    _, gallery_identities, d = _comparisons(root)
    impostor = d[identity[:, None] != gallery_identities[None, :]]
    # Accept when the distance is at most the threshold: FMR is the share of impostors at or below it.
    threshold = float(np.quantile(impostor, TARGET_FMR))
    return HeldOut(
        root, [r["image_name"] for r in rows], identity,
        np.array([int(r["photo"]) for r in rows]), np.array([int(r["view"]) for r in rows]),
        [r["degradation"] for r in rows], np.array([float(r["severity"]) for r in rows]),
        np.array([float(r["scale"]) for r in rows]), np.array([float(r["genuine"]) for r in rows]),
        np.array([float(r["utility"]) for r in rows]), threshold,
    )


def _comparisons(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A utility folder's descriptors, its clean photos' identities and the distances between the two."""
    with np.load(root / DESCRIPTORS) as data:
        descriptors, gallery, gallery_identities = data["descriptors"], data["gallery"], data["gallery_identities"]
    return descriptors, gallery_identities, distances(descriptors, gallery)


#: The held-out utility under other definitions (``relabelled``), by name.
OTHER_LABELS = (
    "mean impostor minus genuine (after SDD-FIQA)",
    "nearest impostor over genuine (after CR-FIQA)",
    "mirrored view as one more genuine reference",
    "own clean view as the only genuine reference",
)


def relabelled(held: HeldOut) -> dict[str, HeldOut]:
    """The held-out set under other definitions of utility, to check a conclusion is not the formula's.

    From the stored descriptors, each sighting's label becomes (``OTHER_LABELS``, in order):

    * its mean distance to every clean photo of every other identity minus its
      ``genuine`` distance: the separation of its genuine comparison from the whole
      impostor distribution, as SDD-FIQA (Ou et al., 2021) measures it, uncapped;
    * its nearest impostor distance over its ``genuine`` distance, the certainty ratio
      of CR-FIQA (Boutros et al., 2023) in distance form, uncapped;
    * the shipped formula (``utility.utility``) with the clean mirrored view of its photo
      as one more genuine reference. A person with one photo is otherwise matched
      against that photo alone, which cannot show what a turned head or a hand over
      the mouth costs recognition; the mirror of a turned face is turned the other way.
    * the shipped formula with the clean sighting of its own view as the only genuine
      reference: what the degradation alone costs recognition. It drops the pose and
      light change a person's other photos bring, which is why the shipped label keeps
      them; it is here to show how much of a figure comes from mixing people matched
      against their own photo with people matched against others.

    ERC does not change (it reads the distances, not the labels); Spearman and hit@2 do.

    Raises:
        ValueError: ``held`` is not a whole folder, or holds views other than the framing
            and its mirror (0 and 1, as ``test/`` does), or a view without its clean sighting.
    """
    descriptors, gallery_identities, d = _comparisons(held.root)
    if len(descriptors) != len(held):
        raise ValueError(f"{held.root}: {len(descriptors)} descriptors for {len(held)} sightings, not the whole folder")
    if set(held.view.tolist()) - {0, 1}:
        raise ValueError(f"{held.root}: the mirror label needs views 0 and 1 only, found {sorted(set(held.view))}")
    clean = {(i, p, v): k for k, (i, p, v, kind) in
             enumerate(zip(held.identity, held.photo, held.view, held.degradation, strict=True)) if kind == "clean"}
    try:
        mirror = np.array([clean[(i, p, 1 - v)] for i, p, v in zip(held.identity, held.photo, held.view, strict=True)])
    except KeyError as e:
        raise ValueError(f"{held.root}: no clean sighting of (identity, photo, view) {e.args[0]} to mirror") from e
    # The mirror's mirror: every clean sighting exists once both views of a photo have theirs.
    own = mirror[mirror]
    impostors = np.where(held.identity[:, None] != gallery_identities[None, :], d, np.nan)
    nearest = np.nanmin(impostors, axis=1)
    to_mirror = np.linalg.norm(descriptors - descriptors[mirror], axis=1)
    to_own = np.linalg.norm(descriptors - descriptors[own], axis=1)
    # The stored genuine distance is the mean over the person's photos (the own view standing for its photo).
    photos = (gallery_identities[None, :] == held.identity[:, None]).sum(axis=1)
    with_mirror = (held.genuine * photos + to_mirror) / (photos + 1)
    labels = (np.nanmean(impostors, axis=1) - held.genuine, nearest / np.maximum(held.genuine, 1e-6),
              utility(with_mirror, nearest), utility(to_own, nearest))
    return {name: replace(held, utility=np.asarray(label, np.float64))
            for name, label in zip(OTHER_LABELS, labels, strict=True)}


@dataclass(frozen=True)
class Report:
    """The figures of one score on the held-out sightings."""

    spearman: float
    per_degradation: dict[str, float]
    fnmr: dict[float, float]
    erc_area: float
    hit_at_2: float
    within_person: dict[str, float]

    @property
    def worst_degradation(self) -> float:
        return min(self.per_degradation.values())


def erc(scores: np.ndarray, genuine: np.ndarray, threshold: float, reject: np.ndarray) -> np.ndarray:
    """FNMR of the genuine comparisons kept after rejecting each fraction in ``reject`` of the lowest scores."""
    order = np.argsort(scores, kind="stable")
    failed = (genuine > threshold)[order]
    n = len(scores)
    out = []
    for fraction in reject:
        kept = failed[int(np.floor(fraction * n)) :]
        out.append(float(kept.mean()) if kept.size else 0.0)
    return np.array(out)


def hit_at_2(scores: np.ndarray, held: HeldOut) -> float:
    """Share of best-of-8 groups whose highest-scored sighting is among the 2 of highest utility."""
    groups: dict[tuple[int, int, int, str], list[int]] = {}
    for i in range(len(held)):
        if held.degradation[i] != "clean":
            groups.setdefault((held.identity[i], held.photo[i], held.view[i], held.degradation[i]), []).append(i)
    hits = []
    for members in groups.values():
        index = np.array(members)
        chosen = index[int(np.argmax(scores[index]))]
        second = np.sort(held.utility[index])[-2] if len(index) > 1 else held.utility[index][0]
        hits.append(held.utility[chosen] >= second)
    return float(np.mean(hits)) if hits else 0.0


def degradation_oracle(held: HeldOut, reference: HeldOut, neighbours: int = 16) -> np.ndarray:
    """A face-agnostic reference score: what a degradation meter calibrated on other people would say.

    Each sighting scores the mean utility of the ``neighbours`` sightings of ``reference``
    (the training identities, never the held-out ones) through the same degradation at
    the nearest strengths; a degradation ``reference`` lacks scores its mean utility. It
    knows what no scorer can (the degradation and its strength) and nothing of the face
    itself, so its figures show how far the labels reward telling degradations apart, and
    what is left to how the people differ. It is a yardstick for the targets, not a score
    a scorer can match.

    Calibrated on other identities rather than on the held-out ones less one: a leave-one-out
    mean lifts exactly the identity whose utility is low (its peers are the others), which
    turned that meter against the labels (low-resolution Spearman 0.04).
    """
    kinds = np.array(reference.degradation)
    out = np.full(len(held), float(reference.utility.mean()))
    for i, kind in enumerate(held.degradation):
        peers = np.flatnonzero(kinds == kind)
        if len(peers):
            nearest = peers[np.argsort(np.abs(reference.severity[peers] - held.severity[i]), kind="stable")]
            out[i] = reference.utility[nearest[:neighbours]].mean()
    return out


def within_person(scores: np.ndarray, held: HeldOut) -> dict[str, float]:
    """Per degradation, the mean over the people of Spearman among one person's sightings of it.

    A track holds one person, so best-shot selection only ever ranks one person's
    sightings: how the labels of different people compare (set by how many reference
    photos each has, and what those photos show) does not enter. A person without two
    sightings of a degradation, or whose utility does not vary within it, has nothing to
    rank and is left out of its mean;
    a degradation where no one's varies reads NaN.
    """
    degradation = np.array(held.degradation)
    out = {}
    for kind in sorted({d for d in held.degradation if d != "clean"}):
        figures = []
        for person in np.unique(held.identity):
            members = (degradation == kind) & (held.identity == person)
            if members.sum() > 1 and np.ptp(held.utility[members]) > 0:
                figures.append(spearman(scores[members], held.utility[members]))
        out[kind] = float(np.mean(figures)) if figures else float("nan")
    return out


def strength_ceiling(held: HeldOut) -> np.ndarray:
    """The best any function of the degradation's strength can rank within each degradation.

    Each sighting scores the mean rank of utility among the sightings of its degradation
    at its strength. With as many sightings at every strength (the held-out set's 8
    strengths of every face view), sorting the strengths so is the best of all their
    orders by the rearrangement inequality, so per degradation its Spearman is the
    ceiling of a face-agnostic degradation meter: above it, a score must tell from the
    image which people the recogniser finds harder. It reads the labels: a yardstick,
    not a score (its pooled figure means nothing).
    """
    out = np.zeros(len(held))
    degradation = np.array(held.degradation)
    for kind in set(held.degradation):
        members = np.flatnonzero(degradation == kind)
        ranks = average_ranks(held.utility[members])
        for strength in np.unique(held.severity[members]):
            level = held.severity[members] == strength
            out[members[level]] = ranks[level].mean()
    return out


def worst_degradation_fusion(components: Mapping[str, np.ndarray], held: HeldOut, samples: int = 3000,
                             refined: int = 4, seed: int = 0) -> dict[str, float]:
    """The weights of ``components`` whose weighted mean best lifts the worst per-degradation Spearman.

    Chosen on ``held`` itself: ``samples`` seeded uniform draws on the simplex, then Nelder-Mead
    over softmax logits from the ``refined`` best (a Spearman is flat between rank swaps, so a
    local search alone stalls where it starts). What no fusion of these components can exceed
    on these people, and what reaching for it costs the other figures: a yardstick that reads
    the labels, not a fusion to ship.
    """
    from scipy import optimize
    from scipy.special import softmax

    names = list(components)
    table = np.stack([np.asarray(components[n], np.float64) for n in names], axis=1)
    degradation = np.array(held.degradation)
    members = [degradation == kind for kind in sorted(set(held.degradation) - {"clean"})]

    def worst(weights: np.ndarray) -> float:
        fused = table @ weights
        return min(spearman(fused[m], held.utility[m]) for m in members)

    draws = np.random.default_rng(seed).dirichlet(np.ones(len(names)), samples)
    ranked = sorted(draws, key=worst, reverse=True)[:refined]
    found = [softmax(optimize.minimize(lambda x: -worst(softmax(x)), np.log(np.maximum(w, 1e-6)),
                                       method="Nelder-Mead", options={"maxiter": 800}).x) for w in ranked]
    best = max([*ranked, *found], key=worst)
    return {n: round(float(w), 3) for n, w in zip(names, best, strict=True)}


def report(scores: np.ndarray, held: HeldOut) -> Report:
    """Every figure of ``scores`` (one per sighting, higher is better)."""
    scores = np.asarray(scores, np.float64)
    if scores.shape != (len(held),) or not np.all(np.isfinite(scores)):
        raise ValueError(f"need {len(held)} finite scores, got shape {scores.shape}")
    kinds = sorted({d for d in held.degradation if d != "clean"})
    degradation = np.array(held.degradation)
    per = {k: spearman(scores[degradation == k], held.utility[degradation == k]) for k in kinds}
    fine = erc(scores, held.genuine, held.threshold, np.linspace(0.0, 0.5, 51))
    points = erc(scores, held.genuine, held.threshold, np.array(REJECT_POINTS))
    return Report(spearman(scores, held.utility), per, dict(zip(REJECT_POINTS, map(float, points), strict=True)),
                  float(fine.mean()), hit_at_2(scores, held), within_person(scores, held))


def subset(held: HeldOut, keep: np.ndarray) -> HeldOut:
    """The sightings of ``held`` where the boolean mask ``keep`` is true (same threshold)."""
    return taken(held, np.flatnonzero(keep))


def taken(held: HeldOut, index: np.ndarray) -> HeldOut:
    """The sightings of ``held`` at ``index``, in that order, repeats kept (same threshold)."""
    return replace(held, names=[held.names[i] for i in index], identity=held.identity[index],
                   photo=held.photo[index], view=held.view[index],
                   degradation=[held.degradation[i] for i in index], severity=held.severity[index],
                   scale=held.scale[index], genuine=held.genuine[index], utility=held.utility[index])


def photos_of(held: HeldOut, person: int) -> int:
    """How many photos of ``person`` their held-out sightings were cut from."""
    return len(set(held.photo[held.identity == person].tolist()))


def single_photo_people(held: HeldOut) -> np.ndarray:
    """A mask of the sightings of people with one photo: those matched only against the photo they were cut from.

    A person with several photos is matched against the others too (real pose and light
    change), so their utility is lower even when clean, by an amount no image of theirs shows.
    """
    photos = {person: photos_of(held, person) for person in set(held.identity.tolist())}
    return np.array([photos[person] == 1 for person in held.identity.tolist()], dtype=bool)


#: The bootstrap over held-out people: how many draws, and the share of them an interval holds.
BOOTSTRAP_DRAWS = 1000
BOOTSTRAP_COVERAGE = 0.9


def _drawn_people(people: Sequence[int], draws: int, seed: int) -> Iterator[np.ndarray]:
    """``draws`` draws of ``len(people)`` people with replacement, seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        yield rng.choice(people, size=len(people), replace=True)


def _interval(values: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``values`` (draws × figures), the central interval holding ``coverage`` of them."""
    tail = 100.0 * (1.0 - coverage) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail], axis=0)
    return low, high


def person_intervals(scores: np.ndarray, held: HeldOut, draws: int = BOOTSTRAP_DRAWS,
                     coverage: float = BOOTSTRAP_COVERAGE, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Per degradation, the interval holding ``coverage`` of the Spearman of ``scores``
    over held-out persons drawn with replacement (a bootstrap over people).

    The held-out people are few and each brings an offset to every sighting of theirs
    (a utility no image shows, or a score the labels cannot see), so a per-degradation
    figure is as uncertain as the choice of people: this says how much.
    """
    scores = np.asarray(scores, np.float64)
    degradation = np.array(held.degradation)
    kinds = sorted({d for d in held.degradation if d != "clean"})
    people = sorted(set(held.identity.tolist()))
    members = {(p, k): np.flatnonzero((held.identity == p) & (degradation == k)) for p in people for k in kinds}
    figures = np.empty((draws, len(kinds)))
    for d, drawn in enumerate(_drawn_people(people, draws, seed)):
        for j, kind in enumerate(kinds):
            index = np.concatenate([members[(p, kind)] for p in drawn])
            figures[d, j] = spearman(scores[index], held.utility[index])
    low, high = _interval(figures, coverage)
    return {kind: (float(low[j]), float(high[j])) for j, kind in enumerate(kinds)}


def interval_table(figures: Mapping[str, Report], intervals: Mapping[str, Mapping[str, tuple[float, float]]],
                   coverage: float = BOOTSTRAP_COVERAGE) -> str:
    """Spearman per degradation with its interval over resampled persons, one column per score."""
    names = list(figures)
    kinds = sorted(next(iter(figures.values())).per_degradation) if figures else []
    lines = ["| degradation | " + " | ".join(f"{n} ({100 * coverage:.0f} % interval)" for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for kind in kinds:
        cells = [f"{figures[n].per_degradation[kind]:.3f} ({intervals[n][kind][0]:.2f} to {intervals[n][kind][1]:.2f})"
                 for n in names]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The figures ``paired_person_bootstrap`` compares, each read from a Report with whether higher is better.
PAIRED_FIGURES = {
    "Spearman pooled": (lambda r: r.spearman, True),
    "Spearman worst degradation": (lambda r: r.worst_degradation, True),
    "ERC area": (lambda r: r.erc_area, False),
    "best-of-8 hit@2": (lambda r: r.hit_at_2, True),
}


@dataclass(frozen=True)
class PairedDifference:
    """One figure of a second score minus the first's, on the same held-out people.

    Attributes:
        observed: the difference on the held-out people as they are.
        low, high: the interval holding the bootstrap's coverage of the difference over
            people drawn with replacement (both scores on the same draws).
        second_better: the share of draws where the second score is better.
    """

    observed: float
    low: float
    high: float
    second_better: float


def paired_person_bootstrap(first: np.ndarray, second: np.ndarray, held: HeldOut, draws: int = BOOTSTRAP_DRAWS,
                            coverage: float = BOOTSTRAP_COVERAGE, seed: int = 0) -> dict[str, PairedDifference]:
    """Each of ``PAIRED_FIGURES`` of ``second`` minus ``first``, over held-out people drawn with replacement.

    Whether one score beats another on a dozen people depends on which dozen: each person
    brings an offset to every sighting of theirs. Both scores are judged on the same
    draws, so what the people share cancels and what is left is how far the difference
    itself rests on who was held out. A person drawn twice counts as two people (their
    best-of-8 groups and within-person rankings stay apart).
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    people = sorted(set(held.identity.tolist()))
    rows = {p: np.flatnonzero(held.identity == p) for p in people}

    def differences(index: np.ndarray, sample: HeldOut) -> list[float]:
        a, b = report(first[index], sample), report(second[index], sample)
        return [read(b) - read(a) for read, _ in PAIRED_FIGURES.values()]

    drawn_differences = np.empty((draws, len(PAIRED_FIGURES)))
    for d, drawn in enumerate(_drawn_people(people, draws, seed)):
        index = np.concatenate([rows[p] for p in drawn])
        as_people = np.repeat(np.arange(len(drawn)), [len(rows[p]) for p in drawn])
        drawn_differences[d] = differences(index, replace(taken(held, index), identity=as_people))
    observed = differences(np.arange(len(held)), held)
    low, high = _interval(drawn_differences, coverage)
    return {
        name: PairedDifference(observed[j], float(low[j]), float(high[j]),
                               float(np.mean(drawn_differences[:, j] > 0 if higher else drawn_differences[:, j] < 0)))
        for j, (name, (_, higher)) in enumerate(PAIRED_FIGURES.items())
    }


def paired_table(differences: Mapping[str, PairedDifference], first: str, second: str,
                 coverage: float = BOOTSTRAP_COVERAGE) -> str:
    """``paired_person_bootstrap``'s figures as a markdown table."""
    lines = [f"| {second} minus {first} | difference | {100 * coverage:.0f} % interval over people | "
             f"draws where {second} is better |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {d.observed:+.4f} | {d.low:+.4f} to {d.high:+.4f} | {100 * d.second_better:.0f} % |"
              for name, d in differences.items()]
    return "\n".join(lines)


@dataclass(frozen=True)
class PersonPair:
    """Two scores' Spearman with utility over all of one held-out person's sightings."""

    identity: int
    photos: int
    first: float
    second: float


def paired_by_person(first: np.ndarray, second: np.ndarray, held: HeldOut) -> list[PersonPair]:
    """Per held-out person, each score's Spearman with utility over that person's sightings.

    A track's best shot is chosen among one person's sightings, so this is the ranking it
    needs. ``paired_person_bootstrap`` asks whether a difference survives redrawing the
    people; this shows for whom it holds. ``photos`` tells the two kinds of label apart: a
    person with several photos is matched against another photo of theirs, as an enrolment
    photo is, and a one-photo person against their own undegraded photo.
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    pairs = []
    for person in sorted(set(held.identity.tolist())):
        mine = held.identity == person
        pairs.append(PersonPair(person, photos_of(held, person),
                                spearman(first[mine], held.utility[mine]), spearman(second[mine], held.utility[mine])))
    return pairs


def person_pair_table(pairs: Sequence[PersonPair], first: str, second: str) -> str:
    """``paired_by_person``'s figures as a markdown table, then how many people of each kind ``second`` ranks better."""
    lines = [f"| held-out person | photos | {first} | {second} | {second} minus {first} |",
             "|---:|---:|---:|---:|---:|"]
    lines += [f"| {p.identity} | {p.photos} | {p.first:.3f} | {p.second:.3f} | {p.second - p.first:+.3f} |"
              for p in pairs]
    lines.append("")
    for kind, several in (("one photo", False), ("several photos", True)):
        members = [p for p in pairs if (p.photos > 1) == several]
        if members:
            better = sum(p.second > p.first for p in members)
            lines.append(f"{second} is better for {better} of the {len(members)} people with {kind}.")
    return "\n".join(lines)


@dataclass(frozen=True)
class PersonFigures:
    """How one held-out person sits in a score's figures."""

    identity: int
    photos: int
    clean_utility: float
    clean_score: float
    worst_without: float
    worst_kind_without: str


def per_person(scores: np.ndarray, held: HeldOut) -> list[PersonFigures]:
    """Per held-out person: their clean views' mean utility and mean score, and the worst
    per-degradation Spearman of ``scores`` over everyone else.

    Shows how much one person's offset (a score the image earns that the labels cannot
    see, or a utility no image shows) decides a per-degradation figure.
    """
    scores = np.asarray(scores, np.float64)
    clean = np.array([d == "clean" for d in held.degradation])
    out = []
    for identity in sorted(set(held.identity.tolist())):
        mine = held.identity == identity
        others = report(scores[~mine], subset(held, ~mine))
        kind = min(others.per_degradation, key=others.per_degradation.__getitem__)
        out.append(PersonFigures(identity, photos_of(held, identity),
                                 float(held.utility[mine & clean].mean()), float(scores[mine & clean].mean()),
                                 others.per_degradation[kind], kind))
    return out


def per_person_table(rows: list[PersonFigures]) -> str:
    """The ``per_person`` figures, one row per person."""
    lines = ["| held-out person | photos | clean views: utility | clean views: score | "
             "worst degradation without this person |", "|---:|---:|---:|---:|---|"]
    lines += [f"| {r.identity} | {r.photos} | {r.clean_utility:.4f} | {r.clean_score:.3f} | "
              f"{r.worst_without:.3f} ({r.worst_kind_without}) |" for r in rows]
    return "\n".join(lines)


def markdown_table(reports: Mapping[str, Report]) -> str:
    """The side-by-side table of every score's figures (one row per score)."""
    points = " | ".join(f"FNMR@{int(100 * r)}%" for r in REJECT_POINTS)
    lines = [
        f"| score | Spearman pooled | Spearman worst degradation | {points} | ERC area | best-of-8 hit@2 |",
        "|---|---:|---:|" + "---:|" * len(REJECT_POINTS) + "---:|---:|",
    ]
    for name, r in reports.items():
        fnmr = " | ".join(f"{r.fnmr[p]:.3f}" for p in REJECT_POINTS)
        lines.append(f"| {name} | {r.spearman:.3f} | {r.worst_degradation:.3f} | {fnmr} | {r.erc_area:.4f} | "
                     f"{r.hit_at_2:.3f} |")
    return "\n".join(lines)


def per_degradation_table(reports: Mapping[str, Report], one_person: bool = False) -> str:
    """Spearman per degradation, one column per score: over everyone, or within one person (``within_person``)."""
    names = list(reports)
    kinds = sorted(next(iter(reports.values())).per_degradation) if reports else []
    lines = ["| degradation | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for kind in kinds:
        figures = (reports[n].within_person if one_person else reports[n].per_degradation for n in names)
        lines.append(f"| {kind} | " + " | ".join(f"{f[kind]:.3f}" for f in figures) + " |")
    return "\n".join(lines)
