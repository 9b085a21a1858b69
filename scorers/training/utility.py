"""Recognition-utility labels: how well a face recogniser can still match a degraded sighting.

A *sighting* is a real face aligned to the ArcFace framing at 224 px (the degradations'
reference size: eyes 70.5 px apart), degraded by a chain of camera degradations. Its
utility is measured by an independent recogniser (dlib's ResNet, ``recognition.py``)
against clean references:

* ``genuine``: the mean Euclidean distance of the sighting's descriptor to the clean
  descriptors of the same identity: its own undegraded view, and every other photo of
  the person (real pose and light change, where an identity has several photos).
* ``impostor``: the distance to the nearest clean descriptor of any other identity,
  the nearest impostor class of CR-FIQA (Boutros et al., 2023).

and mapped to [0, 1] by

    utility = σ((min(impostor, 0.6) − genuine) / T),   T = 0.08,   σ(x) = 1 / (1 + e^−x).

Why this form: CR-FIQA's certainty ratio scores a sample by how much nearer it lies to
its own class centre than to the nearest other class; SDD-FIQA scores it by how far its
genuine comparisons are separated from its impostor comparisons. Both say the same
thing for a verification system: a sample is useful when its genuine comparison lies
clearly on the accept side of the decision *and* of every impostor. The margin
``min(impostor, 0.6) − genuine`` is exactly that in distance form, capped by dlib's
operating threshold 0.6 (a sighting is not more useful because the gallery happens to
hold no look-alike). The logistic turns the margin into a probability-like score:
a clean sighting (genuine ≈ 0.1-0.2 against the person's photos, margin ≈ 0.4) scores
about 0.99, one at the decision boundary (margin 0) 0.5, one that has drifted to an
impostor (margin −0.2) 0.08. T = 0.08 is about the spread of dlib's genuine distances
under mild degradation, so label differences are meaningful comparison differences.
Labels depend only on distances, so the same image keeps its label whatever the model.

Evaluation (``evaluate.py``) reads the raw ``genuine`` distances and every impostor
comparison, not the labels, to compute error-versus-reject curves.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.align import ARCFACE_TEMPLATE, TEMPLATE_SIZE, align_face
from fiqa_stream.scorers.training.degradations import (
    CAMERA,
    REFERENCE_SIZE,
    Step,
    apply_chain,
    native_scale,
    random_chain,
)
from fiqa_stream.scorers.training.recognition import SAME_PERSON, Recogniser, distances
from fiqa_stream.scorers.training.sources import DEFAULT_SOURCES, Identity, Photo, yuface_faces

if TYPE_CHECKING:
    from fiqa_stream.scorers.training.degradation_set import FaceSplit

log = logging.getLogger(__name__)

TEMPERATURE = 0.08
#: Side of a sighting: the degradations' reference crop.
SIGHTING_SIZE = REFERENCE_SIZE
#: The five landmarks of every sighting (the ArcFace template at its side).
SIGHTING_LANDMARKS = (ARCFACE_TEMPLATE * (SIGHTING_SIZE / TEMPLATE_SIZE)).astype(np.float32)
#: The grey margin a sighting gets before yuface looks for its face, as a share of its side.
_FIND_MARGIN = 0.3
#: The face rectangle dlib's shape predictor starts from (x1, y1, x2, y2): brow to chin, as its detector boxes.
SIGHTING_BOX = tuple(v * SIGHTING_SIZE / TEMPLATE_SIZE for v in (16.0, 26.0, 96.0, 106.0))


def utility(genuine: float | np.ndarray, impostor: float | np.ndarray) -> np.ndarray:
    """``σ((min(impostor, 0.6) − genuine) / T)``: see the module docstring."""
    margin = np.minimum(np.asarray(impostor, np.float64), SAME_PERSON) - np.asarray(genuine, np.float64)
    return 1.0 / (1.0 + np.exp(-margin / TEMPERATURE))


def sighting(photo: Photo, landmarks: np.ndarray | None = None) -> np.ndarray:
    """The photo's face aligned to the ArcFace framing at ``SIGHTING_SIZE`` px (BGR uint8)."""
    points = photo.landmarks if landmarks is None else landmarks
    return align_face(photo.image, points, np.zeros(4, np.float32), SIGHTING_SIZE)


def model_crop(image: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """A sighting at the model's side, in the framing it was cut to (what the models learn from)."""
    return align_face(image, SIGHTING_LANDMARKS, np.zeros(4, np.float32), size)


def as_captured(image: np.ndarray, scale: float) -> np.ndarray:
    """A sighting at the scale it was captured at (smaller after ``low_resolution``)."""
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else image


def find_face(image: np.ndarray) -> tuple[np.ndarray | None, float]:
    """The five landmarks (5, 2) and confidence of the surest face yuface finds in a sighting.

    Searched on a copy with a grey margin, since a sighting is cut tight to the face;
    (None, 0.0) where yuface finds none.
    """
    pad = max(8, round(_FIND_MARGIN * image.shape[0]))
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    scores, _, landmarks = yuface_faces(padded, 0.3)
    if not scores.size:
        return None, 0.0
    best = int(np.argmax(scores))
    return landmarks[best] - pad, min(float(scores[best]) / 100.0, 1.0)


@dataclass(frozen=True)
class UtilitySample:
    """One degraded sighting, its recogniser measurements and its label.

    Attributes:
        identity: index of the person; the unit of every split.
        photo: index of the photo within the identity.
        view: the view of that photo (0 clean framing, 1 mirror, then jittered framings).
        index: the sample's number within its view.
        image: the degraded sighting, BGR uint8, ``SIGHTING_SIZE`` a side.
        chain: the degradations applied.
        descriptor: dlib's 128-d descriptor of the sighting.
        genuine: mean distance to the identity's clean references.
        impostor: distance to the nearest other identity's clean reference.
    """

    identity: int
    photo: int
    view: int
    index: int
    image: np.ndarray
    chain: tuple[Step, ...]
    descriptor: np.ndarray
    genuine: float
    impostor: float

    @property
    def utility(self) -> float:
        return float(utility(self.genuine, self.impostor))

    @property
    def name(self) -> str:
        return f"id{self.identity:03d}_p{self.photo}_v{self.view:02d}_{self.index:03d}"

    @property
    def scale(self) -> float:
        """The scale the face was captured at (below 1 after ``low_resolution``)."""
        return min([native_scale(s.severity) for s in self.chain if s.name == "low_resolution"], default=1.0)

    @property
    def degradation(self) -> str:
        """The chain's names joined by ``+`` (``clean`` for none)."""
        return "+".join(s.name for s in self.chain) or "clean"


def _views(photo: Photo, jitters: int, rng: np.random.Generator) -> list[np.ndarray]:
    from fiqa_stream.scorers.training.degradation_set import jitter_landmarks

    clean = sighting(photo)
    views = [clean, cv2.flip(clean, 1)]
    for k in range(jitters):
        jittered = sighting(photo, jitter_landmarks(photo.landmarks, rng))
        views.append(cv2.flip(jittered, 1) if k % 2 else jittered)
    return views


@dataclass(frozen=True)
class Gallery:
    """The clean reference descriptors: one per photo (its view 0), with its identity."""

    descriptors: np.ndarray
    identities: np.ndarray
    photos: np.ndarray


def gallery(people: Sequence[Identity], recogniser: Recogniser) -> Gallery:
    """Clean descriptors of every photo of every identity."""
    descriptors, ids, photos = [], [], []
    for i, person in enumerate(people):
        for p, photo in enumerate(person.photos):
            descriptors.append(recogniser.describe(sighting(photo), SIGHTING_BOX))
            ids.append(i)
            photos.append(p)
    return Gallery(np.stack(descriptors), np.array(ids), np.array(photos))


def measure(descriptor: np.ndarray, own_view: np.ndarray, identity: int, photo: int, refs: Gallery
            ) -> tuple[float, float]:
    """(genuine, impostor) distances of one descriptor (see the module docstring)."""
    d = distances(descriptor, refs.descriptors)[0]
    others = (refs.identities == identity) & (refs.photos != photo)
    genuine = np.concatenate([distances(descriptor, own_view)[0], d[others]])
    impostor = d[refs.identities != identity]
    return float(genuine.mean()), float(impostor.min()) if impostor.size else SAME_PERSON


ChainMaker = Callable[[np.random.Generator, int], list[tuple[Step, ...]]]


def random_chains(samples: int, pristine: int = 1, max_steps: int = 2) -> ChainMaker:
    """``pristine`` empty chains and ``samples`` random camera chains per view (``degradations.CAMERA``)."""

    def make(rng: np.random.Generator, view: int) -> list[tuple[Step, ...]]:
        return [()] * pristine + [tuple(random_chain(rng, max_steps, 0.05, CAMERA)) for _ in range(samples)]

    return make


def grid_chains(names: Sequence[str] = tuple(CAMERA), severities: int = 8) -> ChainMaker:
    """Every degradation in ``names`` alone at ``severities`` evenly spaced strengths, plus the clean view."""
    levels = np.linspace(0.0, 1.0, severities + 1)[1:]

    def make(rng: np.random.Generator, view: int) -> list[tuple[Step, ...]]:
        return [()] + [(Step(n, float(s)),) for n in names for s in levels]

    return make


def build_utility_samples(
    people: Sequence[Identity],
    members: Sequence[int],
    refs: Gallery,
    recogniser: Recogniser,
    chains: ChainMaker,
    jitters: int,
    seed: int,
    mirror: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[UtilitySample]:
    """The labelled sightings of the identities ``members`` (indices into ``people``).

    Every photo of every member gives its views (clean, mirrored when ``mirror``, then
    ``jitters`` jittered framings); each view gets the chains ``chains`` draws for it.
    Identity ``i`` draws from its own random stream ``(seed, i)``.
    """
    out: list[UtilitySample] = []
    for i in members:
        rng = np.random.default_rng([seed, i])
        for p, photo in enumerate(people[i].photos):
            views = _views(photo, jitters, rng)
            if not mirror:
                views = views[:1] + views[2:]
            for v, view in enumerate(views):
                own = recogniser.describe(view, SIGHTING_BOX)[None]
                for k, chain in enumerate(chains(rng, v)):
                    image = apply_chain(view, list(chain), rng) if chain else view
                    descriptor = recogniser.describe(image, SIGHTING_BOX)
                    genuine, impostor = measure(descriptor, own, i, p, refs)
                    out.append(UtilitySample(i, p, v, k, image, chain, descriptor, genuine, impostor))
                if progress is not None:
                    progress(len(out))
    return out


SIGHTINGS_CSV = "sightings.csv"
DESCRIPTORS = "descriptors.npz"
_COLUMNS = ("image_name", "identity", "photo", "view", "index", "degradation", "chain", "severity", "scale",
            "genuine", "impostor", "utility")


def write_utility_samples(samples: Sequence[UtilitySample], root: Path, people: Sequence[Identity], refs: Gallery,
                          crop_size: int | None = TEMPLATE_SIZE) -> None:
    """Write samples as a training folder (``labels.csv`` + model crops) and a sightings table.

    Files: ``labels.csv`` (``image_name,utility``, the challenge layout the trainer
    reads) and ``<name>.png`` (the model crop at ``crop_size``, or the whole sighting
    when None), ``sightings.csv`` (every measurement), ``faces.csv`` (``image_name,face_id``
    for ``degradation_set.read_face_ids``) and ``descriptors.npz`` (the samples'
    descriptors and the clean gallery, for evaluation's impostor comparisons).
    """
    from fiqa_stream.scorers.training.data import write_scored_images

    images = [s.image if crop_size is None else model_crop(s.image, crop_size) for s in samples]
    write_scored_images(root, images, [s.utility for s in samples], [s.name for s in samples])
    with (root / SIGHTINGS_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_COLUMNS)
        for s in samples:
            severity = s.chain[0].severity if len(s.chain) == 1 else (0.0 if not s.chain else -1.0)
            writer.writerow([f"{s.name}.png", s.identity, s.photo, s.view, s.index, s.degradation,
                             " ".join(map(str, s.chain)), f"{severity:.4f}", f"{s.scale:.4f}",
                             f"{s.genuine:.5f}", f"{s.impostor:.5f}", f"{s.utility:.6f}"])
    with (root / "faces.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "face_id", "view", "chain"])
        writer.writerows([f"{s.name}.png", s.identity, s.view, " ".join(map(str, s.chain))] for s in samples)
    (root / "identities.txt").write_text(
        "".join(f"{i}\t{people[i].name}\n" for i in sorted({s.identity for s in samples})), encoding="utf-8"
    )
    np.savez_compressed(
        root / DESCRIPTORS,
        descriptors=np.stack([s.descriptor for s in samples]).astype(np.float32),
        identities=np.array([s.identity for s in samples]),
        gallery=refs.descriptors.astype(np.float32),
        gallery_identities=refs.identities,
    )


#: Shares of the identities for train, validation and held-out test (about 19 / 3 / 8 of 30).
UTILITY_FRACTIONS = (0.63, 0.1, 0.27)


def identity_split(collections: Sequence[int], fractions: tuple[float, float, float] = UTILITY_FRACTIONS,
                   seed: int = 0, fold: tuple[int, int] | None = None) -> FaceSplit:
    """Train, validation and held-out identities, given each identity's collection (``sources.COLLECTIONS``).

    Each collection is split on its own (``degradation_set``'s splits), so a collection
    added later never moves an identity of an earlier one. ``fold`` = (k, n): fold k of
    an n-fold cross-validation within each collection (``fold_split``, validation
    ``fractions[1]`` of its identities); None: ``fractions`` of them by ``seed``.
    """
    from fiqa_stream.scorers.training.degradation_set import FaceSplit, fold_split, split_by_face

    split = FaceSplit([], [], [])
    for collection in sorted(set(collections)):
        ids = [i for i, c in enumerate(collections) if c == collection]
        part = (split_by_face(range(len(ids)), fractions, seed) if fold is None
                else fold_split(range(len(ids)), fold[0], fold[1], fractions[1], seed))
        for into, local in ((split.train, part.train), (split.val, part.val), (split.test, part.test)):
            into.extend(ids[k] for k in local)
    for members in (split.train, split.val, split.test):
        members.sort()
    return split


def load_identities(recogniser: Recogniser, sources: Sequence[str] = DEFAULT_SOURCES) -> list[Identity]:
    """Every real face of ``sources`` grouped by identity, look-alikes merged (``sources.merge_lookalikes``)."""
    from fiqa_stream.scorers.training.sources import merge_lookalikes, raw_identities

    raw = raw_identities(sources)
    descriptors = [np.stack([recogniser.describe(sighting(p), SIGHTING_BOX) for p in person.photos]) for person in raw]
    return merge_lookalikes(raw, descriptors)


def write_utility_folders(
    root: Path,
    jitters: int = 14,
    samples_per_view: int = 6,
    severities: int = 8,
    fractions: tuple[float, float, float] = UTILITY_FRACTIONS,
    seed: int = 0,
    sources: Sequence[str] = DEFAULT_SOURCES,
    crop_size: int = TEMPLATE_SIZE,
    fold: tuple[int, int] | None = None,
) -> dict[str, int]:
    """Build and write the recognition-utility data set, split by identity.

    The split (``identity_split``) takes ``fractions`` of the identities by ``seed``, or
    with ``fold`` = (k, n) holds out the k-th of n disjoint groups, so the n folds of one
    seed hold out every identity once; ``split.json`` records which identities went where.

    * ``train/``, ``val/``: per photo of each identity, the clean framing, its mirror
      and ``jitters`` jittered framings; per view one pristine and ``samples_per_view``
      random camera chains (``degradations.CAMERA``, 1-2 steps), labelled by utility;
      model crops at ``crop_size``.
    * ``test/`` (held-out identities): per photo, the clean framing and its mirror,
      each alone through every camera degradation at ``severities`` evenly spaced
      strengths (groups of ``severities`` sightings of one face and one degradation),
      plus the clean view; whole 224-px sightings, so evaluation can score them as the
      pipeline would.
    * ``fusion/``, ``fusion-val/``: whole sightings of the training and of the
      validation identities through random chains, for fitting fusion weights.
    * ``unlabelled-1/``, ``unlabelled-2/``: further random views of the *training*
      identities (other seeds), images only, for the distillation recipe.

    Returns:
        Number of images written per folder.
    """
    from fiqa_stream.scorers.training.degradation_set import UNLABELLED

    recogniser = Recogniser()
    people = load_identities(recogniser, sources)
    refs = gallery(people, recogniser)
    split = identity_split([person.collection for person in people], fractions, seed, fold)
    root.mkdir(parents=True, exist_ok=True)
    (root / "split.json").write_text(json.dumps({
        "seed": seed, "fold": None if fold is None else f"{fold[0]}/{fold[1]}",
        "train": split.train, "val": split.val, "test": split.test,
        "names": [person.name for person in people]}) + "\n", encoding="utf-8")
    log.info("%d identities: %d train, %d validation, %d held out", len(people), len(split.train), len(split.val),
             len(split.test))

    def progress(count: int) -> None:
        log.debug("%d sightings labelled", count)

    counts: dict[str, int] = {}
    training = random_chains(samples_per_view)
    for name, members in (("train", split.train), ("val", split.val)):
        samples = build_utility_samples(people, members, refs, recogniser, training, jitters, seed, progress=progress)
        write_utility_samples(samples, root / name, people, refs, crop_size)
        counts[name] = len(samples)
    held_out = build_utility_samples(people, split.test, refs, recogniser, grid_chains(severities=severities), 0,
                                     seed, progress=progress)
    write_utility_samples(held_out, root / "test", people, refs, None)
    counts["test"] = len(held_out)
    counts.update(_write_fusion_pair(root, people, split.train, split.val, refs, recogniser, seed))
    for number, name in enumerate(UNLABELLED, start=1):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        count = 0
        for i in split.train:
            rng = np.random.default_rng([seed + 1000 * number, i])
            for p, photo in enumerate(people[i].photos):
                for v, view in enumerate(_views(photo, jitters, rng)):
                    for k, chain in enumerate(training(rng, v)):
                        image = model_crop(apply_chain(view, list(chain), rng) if chain else view, crop_size)
                        path = folder / f"id{i:03d}_p{p}_v{v:02d}_{k:03d}.png"
                        if not cv2.imwrite(str(path), image):
                            raise OSError(f"could not write {path}")
                        count += 1
        counts[name] = count
    return counts


#: Random chains per view of ``fusion-val/``: its three identities need more sightings
#: than ``fusion/``'s nineteen for a fit of six weights.
FUSION_VAL_SAMPLES_PER_VIEW = 40


def write_fusion_folder(root: Path, people: Sequence[Identity], members: Sequence[int], refs: Gallery,
                        recogniser: Recogniser, seed: int, samples_per_view: int = 12) -> int:
    """Whole sightings of ``members`` for fitting the fusion weights (``fusion.py``).

    ``fusion/`` holds the training identities; ``fusion-val/`` the validation ones, which
    no model learnt from, so a model trained on utility labels is weighed there as on
    people it has never seen. Per photo, the clean framing and its mirror, each pristine
    and through ``samples_per_view`` random camera chains; written like ``test/`` (whole
    sightings), so every weight-free component can be computed as in the pipeline.

    Returns:
        The number of sightings written.
    """
    samples = build_utility_samples(people, members, refs, recogniser, random_chains(samples_per_view), 0,
                                    seed + 7000)
    write_utility_samples(samples, root, people, refs, None)
    return len(samples)


def write_fusion_folders(root: Path, sources: Sequence[str] = DEFAULT_SOURCES) -> dict[str, int]:
    """``root/fusion`` and ``root/fusion-val`` alone, for a set built without them.

    The identities and their split are those of ``root/split.json`` (written by
    ``write_utility_folders``), so fusion weights fitted there are fitted on the same
    training and validation people as the models trained on ``root/train``.

    Raises:
        ConfigError: ``root/split.json`` is missing or unreadable, or ``sources`` no
            longer give the identities it names.
    """
    path = root / "split.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        seed, train, val, names = recorded["seed"], recorded["train"], recorded["val"], recorded["names"]
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; expected the split.json of a utility set built by "
                          "`fiqa-stream dataset`") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: expected a JSON object with seed, train, val and names ({error})") from None
    recogniser = Recogniser()
    people = load_identities(recogniser, sources)
    if [person.name for person in people] != names:
        raise ConfigError(f"{path}: names {len(names)} identities, but the face sources now give "
                          f"{len(people)} others; rebuild the whole set")
    return _write_fusion_pair(root, people, train, val, refs=gallery(people, recogniser), recogniser=recogniser,
                              seed=seed)


def _write_fusion_pair(root: Path, people: Sequence[Identity], train: Sequence[int], val: Sequence[int],
                       refs: Gallery, recogniser: Recogniser, seed: int) -> dict[str, int]:
    """``root/fusion`` of the ``train`` identities and ``root/fusion-val`` of the ``val`` ones."""
    return {
        "fusion": write_fusion_folder(root / "fusion", people, train, refs, recogniser, seed),
        "fusion-val": write_fusion_folder(root / "fusion-val", people, val, refs, recogniser, seed,
                                          samples_per_view=FUSION_VAL_SAMPLES_PER_VIEW),
    }
