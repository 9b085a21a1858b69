"""Recognition-utility labels from dlib's recogniser on real faces.

Needs dlib (PyPI ``dlib-bin``) and ``face-recognition-models``, both in the ``train``
and ``test`` extras; skipped with the reason when either is missing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.training.degradation_set import jitter_landmarks
from fiqa_stream.scorers.training.degradations import DEGRADATIONS
from fiqa_stream.scorers.training.sources import Identity, Photo, detect_faces, merge_lookalikes
from fiqa_stream.scorers.training.utility import (
    SIGHTING_BOX,
    gallery,
    identity_split,
    measure,
    sighting,
    utility,
    write_fusion_folders,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
    reason="recognition-utility labels need dlib-bin and face-recognition-models (pip install 'fiqa-stream[train]')",
)


@pytest.fixture(scope="module")
def recogniser():  # type: ignore[no-untyped-def]
    from fiqa_stream.scorers.training.recognition import Recogniser

    return Recogniser()


@pytest.fixture(scope="module")
def people(photos: list[np.ndarray]) -> list[Identity]:
    """Three of the bundled real faces, one identity each."""
    out = []
    for k in (3, 1, 6):
        (landmarks, confidence), *_ = detect_faces(photos[k])
        out.append(Identity(f"bundled/{k}", (Photo(f"bundled/{k}", photos[k], landmarks, confidence),)))
    return out


def test_the_formula_is_a_margin_capped_at_dlibs_threshold() -> None:
    assert utility(0.6, 0.6) == pytest.approx(0.5)
    assert utility(0.1, 0.9) > 0.99
    # A far nearest impostor adds nothing beyond dlib's operating threshold.
    assert utility(0.3, 0.9) == pytest.approx(utility(0.3, 0.6))
    # Drifting towards an impostor lowers the label even at the same genuine distance.
    assert utility(0.4, 0.5) < utility(0.4, 0.7)
    assert np.all(np.diff(utility(np.linspace(0, 1, 11), 0.7)) < 0)


def test_labels_on_known_pairs(people: list[Identity], recogniser) -> None:  # type: ignore[no-untyped-def]
    refs = gallery(people, recogniser)
    me = people[0].photos[0]
    clean = sighting(me)
    own = recogniser.describe(clean, SIGHTING_BOX)[None]

    def label(image: np.ndarray, identity: int = 0) -> float:
        genuine, impostor = measure(recogniser.describe(image, SIGHTING_BOX), own, identity, 0, refs)
        return float(utility(genuine, impostor))

    rng = np.random.default_rng(0)
    jittered = label(cv2.flip(sighting(me, jitter_landmarks(me.landmarks, rng)), 1))
    # Heavy blur: out of focus and moving (10 px defocus radius, then a 30 px path at 224 px).
    blurred = label(DEGRADATIONS["motion_blur"](DEGRADATIONS["defocus_blur"](clean, 1.0, rng), 1.0, rng))
    impostor = label(sighting(people[1].photos[0]))
    assert label(clean) > 0.99
    assert jittered > 0.9
    assert blurred < 0.6
    assert impostor < 0.1
    assert impostor < blurred < jittered


def test_lookalikes_merge_and_strangers_stay_apart(people: list[Identity], recogniser) -> None:  # type: ignore[no-untyped-def]
    descriptors = [recogniser.describe(sighting(p.photos[0]), SIGHTING_BOX)[None] for p in people]
    assert len(merge_lookalikes(people, descriptors)) == 3
    twice = [people[0], Identity("again", people[0].photos)]
    merged = merge_lookalikes(twice, [descriptors[0], descriptors[0]])
    assert len(merged) == 1 and len(merged[0].photos) == 2
    later = Identity("later", people[0].photos, collection=1)
    (kept,) = merge_lookalikes([later, people[0]], [descriptors[0], descriptors[0]])
    assert kept.collection == 0


def test_a_collection_added_later_never_moves_the_identities_of_an_earlier_one() -> None:
    first = identity_split([0] * 30, seed=0)
    with_later = identity_split([0] * 30 + [1] * 14, seed=0)
    for before, after in ((first.train, with_later.train), (first.val, with_later.val), (first.test, with_later.test)):
        assert [i for i in after if i < 30] == before
    later = set(range(30, 44))
    assert later & set(with_later.test) and later & set(with_later.val) and later & set(with_later.train)
    assert sorted(with_later.train + with_later.val + with_later.test) == list(range(44))


def test_each_fold_holds_out_every_collection_in_turn() -> None:
    collections = [0] * 30 + [1] * 14
    held_out = [i for k in range(1, 5) for i in identity_split(collections, fold=(k, 4)).test]
    assert sorted(held_out) == list(range(44))


BUNDLED = [f"bundled/{k}#0" for k in range(8)]


def test_fusion_folders_alone_hold_the_recorded_training_and_validation_people(tmp_path: Path) -> None:
    (tmp_path / "split.json").write_text(json.dumps({"seed": 0, "train": [0], "val": [5], "test": [],
                                                     "names": BUNDLED}))
    counts = write_fusion_folders(tmp_path, sources=("bundled",))
    for part, person in (("fusion", 0), ("fusion-val", 5)):
        assert (tmp_path / part / "identities.txt").read_text() == f"{person}\t{BUNDLED[person]}\n"
        assert len((tmp_path / part / "labels.csv").read_text().splitlines()) == counts[part]
    # per view (the clean framing and its mirror): pristine plus 12 chains in fusion/, 40 in fusion-val/
    assert counts == {"fusion": 2 * 13, "fusion-val": 2 * 41}


def test_fusion_folders_refuse_a_split_of_other_people(tmp_path: Path) -> None:
    (tmp_path / "split.json").write_text(json.dumps({"seed": 0, "train": [0], "val": [1], "test": [],
                                                     "names": BUNDLED[:7]}))
    with pytest.raises(ConfigError, match="names 7 identities, but the face sources now give 8 others"):
        write_fusion_folders(tmp_path, sources=("bundled",))
    assert not (tmp_path / "fusion").exists()
