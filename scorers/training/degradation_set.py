"""A labelled training set built from real faces: aligned crops through random degradation chains.

Sources are the real head photos of ``fiqa_stream.media.faces.face_photos`` (or
any BGR photos passed in). In each, yuface finds the largest face's five landmarks
and ``align_face`` warps it to the ArcFace framing at ``size`` px, exactly as the
pipeline aligns faces. Each face gives several *views*: the aligned crop, its mirror
image, and copies aligned from landmarks moved by a small random similarity
(rotation, scale, shift, as a detector's landmarks wobble), every other one mirrored.
Every view yields a few pristine samples and many degraded ones: a random chain of
1-3 degradations (``degradations.random_chain``), labelled against the view's
pristine crop by ``labels.quality_label`` (calibrated MS-SSIM on the face region).

Views of one face share its ``face_id``, and splits are made by face id, never by
sample, so no face (nor its mirror or jittered copies) is on both sides of a split.
``write_degradation_set`` stores the set in the challenge layout (``labels.csv`` and
PNGs, read back by ``data.scored_images``) plus ``faces.csv`` (``image_name,face_id,
view,chain``) from which ``read_face_ids`` recovers the split groups.

``write_training_folders`` lays out what the training recipes read: ``train/``,
``val/`` and ``test/`` (the labelled set split by face) and ``unlabelled-1/``,
``unlabelled-2/`` (further degraded views of the *training* faces only, drawn from
other seeds, written without labels) for the distillation recipe's pseudo-labels.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fiqa_stream.scorers.align import align_face
from fiqa_stream.scorers.training.data import write_scored_images
from fiqa_stream.scorers.training.degradations import Step, apply_chain, random_chain
from fiqa_stream.scorers.training.labels import quality_label
from fiqa_stream.scorers.training.sources import yuface_faces

FACES_CSV = "faces.csv"


@dataclass(frozen=True)
class FaceView:
    """One pristine aligned crop of a source face."""

    face_id: int
    view: int
    image: np.ndarray


@dataclass(frozen=True)
class DegradedSample:
    """One labelled training image and where it came from.

    Attributes:
        face_id: the source face; the unit of every split.
        view: which view of the face.
        index: the sample's number within its view.
        image: BGR uint8 aligned crop.
        label: quality in [0, 1] (1 for a pristine crop).
        chain: the degradations applied, in order (empty for a pristine crop).
    """

    face_id: int
    view: int
    index: int
    image: np.ndarray
    label: float
    chain: tuple[Step, ...]

    @property
    def name(self) -> str:
        return f"face{self.face_id:03d}_view{self.view:02d}_{self.index:03d}"


@dataclass(frozen=True)
class FaceSplit:
    """Sample indices of the train, validation and test parts; no face id in two parts."""

    train: list[int]
    val: list[int]
    test: list[int]


def detect_landmarks(photo: np.ndarray) -> np.ndarray | None:
    """The five landmarks (5, 2) of the largest face yuface finds in ``photo``, or None."""
    _, boxes, landmarks = yuface_faces(photo, 0.5)  # head crops: small enough for yuface as they are
    if len(boxes) == 0:
        return None
    return landmarks[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]


def jitter_landmarks(
    landmarks: np.ndarray,
    rng: np.random.Generator,
    max_rotation_deg: float = 6.0,
    max_scale: float = 0.06,
    max_shift: float = 0.04,
) -> np.ndarray:
    """``landmarks`` moved by a random similarity about their centroid (shift relative to the eye distance)."""
    centre = landmarks.mean(axis=0)
    eyes = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    scale = 1.0 + rng.uniform(-max_scale, max_scale)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shift = rng.uniform(-max_shift, max_shift, size=2) * eyes
    return ((landmarks - centre) @ rotation.T + centre + shift).astype(np.float32)


def face_views(
    photo: np.ndarray, face_id: int, size: int, jitters: int, rng: np.random.Generator
) -> list[FaceView]:
    """The aligned crop of the photo's face, its mirror, and ``jitters`` jittered copies.

    Returns:
        ``2 + jitters`` views, or none when no face is found.
    """
    landmarks = detect_landmarks(photo)
    if landmarks is None:
        return []
    crop = align_face(photo, landmarks, np.zeros(4, np.float32), size)
    images = [crop, cv2.flip(crop, 1)]
    for k in range(jitters):
        jittered = align_face(photo, jitter_landmarks(landmarks, rng), np.zeros(4, np.float32), size)
        images.append(cv2.flip(jittered, 1) if k % 2 else jittered)
    return [FaceView(face_id, view, image) for view, image in enumerate(images)]


def degrade_view(
    view: FaceView, samples: int, pristine: int, rng: np.random.Generator
) -> list[DegradedSample]:
    """``pristine`` unchanged copies (label 1) and ``samples`` randomly degraded, labelled ones of a view."""
    out = [DegradedSample(view.face_id, view.view, i, view.image, 1.0, ()) for i in range(pristine)]
    for i in range(pristine, pristine + samples):
        chain = random_chain(rng)
        image = apply_chain(view.image, chain, rng)
        out.append(DegradedSample(view.face_id, view.view, i, image, quality_label(view.image, image), tuple(chain)))
    return out


def build_degradation_set(
    photos: Sequence[np.ndarray] | None = None,
    size: int = 224,
    jitters: int = 2,
    samples_per_view: int = 24,
    pristine_per_view: int = 2,
    seed: int = 0,
) -> list[DegradedSample]:
    """The labelled samples of every view of every face, reproducible from ``seed``.

    Args:
        photos: BGR uint8 photos, one source face each (its largest face); by default
            the real head crops of ``face_photos()``.
        size: side of the aligned crops.
        jitters: jittered views per face, beside the crop and its mirror.
        samples_per_view: degraded samples per view.
        pristine_per_view: undegraded samples per view (label 1).
        seed: seeds everything; face *i* draws from its own stream, so adding photos
            leaves earlier faces' samples unchanged.

    Returns:
        Samples ordered by face, view and index; ``face_id`` is the photo's position.
    """
    if photos is None:
        from fiqa_stream.media.faces import face_photos

        photos = face_photos()
    samples: list[DegradedSample] = []
    for face_id, photo in enumerate(photos):
        rng = np.random.default_rng([seed, face_id])
        for view in face_views(photo, face_id, size, jitters, rng):
            samples.extend(degrade_view(view, samples_per_view, pristine_per_view, rng))
    return samples


def split_by_face(
    face_ids: Sequence[int], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> FaceSplit:
    """Sample indices split into train, validation and test by face id, never by sample.

    Validation and test get at least one face each (rounded share of the faces);
    train gets the rest.

    Args:
        face_ids: the face id of every sample.
        fractions: shares of the faces for train, validation and test.
        seed: seeds the shuffling of the faces.

    Raises:
        ValueError: fewer than 3 faces, or fractions not positive summing to 1.
    """
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three positive shares summing to 1, got {fractions}")
    faces = sorted(set(face_ids))
    if len(faces) < 3:
        raise ValueError(f"a train/val/test split by face needs at least 3 faces, got {len(faces)}")
    order = [faces[i] for i in np.random.default_rng(seed).permutation(len(faces))]
    n_test = max(1, round(fractions[2] * len(faces)))
    n_val = max(1, round(fractions[1] * len(faces)))
    n_val = min(n_val, len(faces) - n_test - 1)
    test_faces, val_faces = set(order[:n_test]), set(order[n_test : n_test + n_val])
    split = FaceSplit([], [], [])
    for index, face in enumerate(face_ids):
        part = split.test if face in test_faces else split.val if face in val_faces else split.train
        part.append(index)
    return split


def fold_split(face_ids: Sequence[int], fold: int, folds: int, val_fraction: float = 0.1,
               seed: int = 0) -> FaceSplit:
    """Fold ``fold`` (1-based) of a ``folds``-fold cross-validation by face id, never by sample.

    The faces are shuffled once by ``seed`` and dealt in turn into ``folds`` groups of
    near-equal size; fold k tests on the k-th group, so the folds of one seed hold out
    every face exactly once. Validation takes a rounded ``val_fraction`` of all faces (at
    least one) from the rest, drawn by ``seed`` and the fold; train gets what is left.

    Raises:
        ValueError: fewer than 2 folds, ``fold`` outside 1..``folds``, or too few faces
            for a test, a validation and a training face in every fold.
    """
    if folds < 2 or not 1 <= fold <= folds:
        raise ValueError(f"fold must be K/N with N at least 2 and K in 1..N, got {fold}/{folds}")
    faces = sorted(set(face_ids))
    order = [faces[i] for i in np.random.default_rng(seed).permutation(len(faces))]
    test_faces = set(order[fold - 1 :: folds])
    rest = [f for f in order if f not in test_faces]
    n_val = max(1, round(val_fraction * len(faces)))
    if len(rest) < n_val + 1:
        raise ValueError(f"{len(faces)} faces cannot make {folds} folds with {n_val} validation and "
                         "at least one training face each")
    val_faces = {rest[i] for i in np.random.default_rng([seed, fold]).permutation(len(rest))[:n_val]}
    split = FaceSplit([], [], [])
    for index, face in enumerate(face_ids):
        part = split.test if face in test_faces else split.val if face in val_faces else split.train
        part.append(index)
    return split


def write_degradation_set(samples: Sequence[DegradedSample], root: Path) -> Path:
    """Write ``samples`` in the challenge layout plus ``faces.csv``; returns ``labels.csv``'s path."""
    labels = write_scored_images(
        root, [s.image for s in samples], [s.label for s in samples], [s.name for s in samples]
    )
    with (root / FACES_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "face_id", "view", "chain"])
        writer.writerows([f"{s.name}.png", s.face_id, s.view, " ".join(map(str, s.chain))] for s in samples)
    return labels


#: Shares of the faces for train, validation and test in ``write_training_folders``: with the
#: 8 bundled faces, 5 train, 1 validation and 2 held-out test faces.
SPLIT_FRACTIONS = (0.625, 0.125, 0.25)
#: The folders of a training data root, as ``write_training_folders`` writes them.
SPLITS = ("train", "val", "test")
UNLABELLED = ("unlabelled-1", "unlabelled-2")


def write_training_folders(
    root: Path,
    photos: Sequence[np.ndarray] | None = None,
    size: int = 112,
    jitters: int = 24,
    samples_per_view: int = 6,
    pristine_per_view: int = 1,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
    seed: int = 0,
) -> dict[str, int]:
    """Build the degradation set and write it split by face, plus two unlabelled sets.

    Args:
        root: the folder to fill (``SPLITS`` and ``UNLABELLED`` subfolders).
        photos: BGR photos, one source face each; by default ``face_photos()``.
        size: side of the aligned crops (the models' input size).
        jitters: jittered views per face.
        samples_per_view: degraded samples per view.
        pristine_per_view: undegraded samples per view.
        fractions: shares of the faces for train, validation and test.
        seed: seeds the samples, the split and the unlabelled sets.

    Returns:
        Number of images written per folder.

    Many views with few samples each (rather than few views with many) keep the
    net from memorising the handful of pristine crops: every framing is new.
    """
    if photos is None:
        from fiqa_stream.media.faces import face_photos

        photos = face_photos()
    samples = build_degradation_set(photos, size, jitters, samples_per_view, pristine_per_view, seed)
    split = split_by_face([s.face_id for s in samples], fractions, seed)
    counts: dict[str, int] = {}
    for name, indices in zip(SPLITS, (split.train, split.val, split.test), strict=True):
        write_degradation_set([samples[i] for i in indices], root / name)
        counts[name] = len(indices)
    train_faces = sorted({samples[i].face_id for i in split.train})
    for number, name in enumerate(UNLABELLED, start=1):
        extra = build_degradation_set(
            [photos[i] for i in train_faces], size, jitters, samples_per_view, pristine_per_view, seed + 1000 * number
        )
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for sample in extra:
            path = folder / f"{sample.name}.png"
            if not cv2.imwrite(str(path), sample.image):
                raise OSError(f"could not write {path}")
        counts[name] = len(extra)
    return counts


def read_face_ids(root: Path) -> dict[str, int]:
    """Image file name → face id, from the ``faces.csv`` of a written degradation set."""
    with (root / FACES_CSV).open(newline="", encoding="utf-8") as handle:
        return {row["image_name"]: int(row["face_id"]) for row in csv.DictReader(handle)}
