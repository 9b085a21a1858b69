"""Labelled data on disk, and the degradation set built from real faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models.preprocess import crops_to_tensor
from fiqa_stream.scorers.training.data import ScoredImageDataset, read_image, scored_images, write_scored_images
from fiqa_stream.scorers.training.degradation_set import (
    build_degradation_set,
    face_views,
    fold_split,
    read_face_ids,
    split_by_face,
    write_degradation_set,
)
from fiqa_stream.scorers.training.degradations import DEGRADATIONS, Step, apply_chain
from fiqa_stream.scorers.training.labels import calibrate, ms_ssim, quality_label


def _image(value: int, size: int = 16) -> np.ndarray:
    image = np.full((size, size, 3), value, np.uint8)
    image[: size // 2, :, 2] = 255 - value
    return image


def _write(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), _image(10 * i))


# --- the CSV loader -----------------------------------------------------------------------------


def test_challenge_layout_reads_headerless_rows(tmp_path: Path) -> None:
    _write(tmp_path, ["a.png", "b.jpg", "c.png"])
    (tmp_path / "train.csv").write_text("a.png,0.25\nb.jpg,0.5\nc,0.75\n")  # c: extension tried
    items = scored_images(tmp_path)
    assert [(i.path.name, i.score) for i in items] == [("a.png", 0.25), ("b.jpg", 0.5), ("c.png", 0.75)]


def test_images_may_sit_in_an_images_subfolder(tmp_path: Path) -> None:
    _write(tmp_path / "images", ["x.png"])
    (tmp_path / "scores.csv").write_text("x.png,0.9\n")
    assert scored_images(tmp_path / "scores.csv")[0].path == (tmp_path / "images" / "x.png").resolve()


def test_gfiqa_style_header_and_score_range(tmp_path: Path) -> None:
    _write(tmp_path, ["p.png", "q.png"])
    (tmp_path / "gfiqa.csv").write_text("Image,MOS,std\np.png,1.0,0.1\nq.png,5.0,0.2\n")
    items = scored_images(tmp_path, score_range=(1.0, 5.0))
    assert [i.score for i in items] == [0.0, 1.0]


def test_labels_csv_is_chosen_among_several(tmp_path: Path) -> None:
    _write(tmp_path, ["a.png"])
    (tmp_path / "labels.csv").write_text("a.png,0.5\n")
    (tmp_path / "other.csv").write_text("whatever\n")
    assert len(scored_images(tmp_path)) == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"one.csv": "a.png,0.5\n", "two.csv": "a.png,0.5\n"}, "exactly one CSV"),
        ({"s.csv": "missing.png,0.5\n"}, "not found"),
        ({"s.csv": "../a.png,0.5\n"}, "outside"),
        ({"s.csv": "a.png,0.5\na.png\n"}, "row 2"),
        ({"s.csv": "picture,rating\na.png,0.5\n"}, "no image column"),
        ({"s.csv": "\n"}, "no rows"),
    ],
)
def test_bad_layouts_name_the_problem(tmp_path: Path, files: dict[str, str], message: str) -> None:
    data = tmp_path / "data"
    _write(data, ["a.png"])
    cv2.imwrite(str(tmp_path / "a.png"), _image(0))  # reachable only by '..'
    for name, text in files.items():
        (data / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        scored_images(data)


def test_dataset_yields_model_input_and_score(tmp_path: Path) -> None:
    _write(tmp_path, ["a.png", "b.png"])
    (tmp_path / "labels.csv").write_text("a.png,0.2\nb.png,0.8\n")
    dataset = ScoredImageDataset(scored_images(tmp_path), input_size=32)
    tensor, score = dataset[1]
    assert len(dataset) == 2
    assert tensor.shape == (3, 32, 32)
    assert score.item() == pytest.approx(0.8)
    assert np.allclose(tensor.numpy(), crops_to_tensor(_image(10), 32)[0].numpy())
    assert dataset.scores.tolist() == pytest.approx([0.2, 0.8])


def test_dataset_applies_the_augmentation(tmp_path: Path) -> None:
    _write(tmp_path, ["a.png"])
    (tmp_path / "labels.csv").write_text("a.png,0.5\n")
    dataset = ScoredImageDataset(scored_images(tmp_path), 16, augment=lambda image: cv2.flip(image, 0))
    assert np.allclose(dataset[0][0].numpy(), crops_to_tensor(cv2.flip(_image(0), 0))[0].numpy())


def test_written_sets_read_back_exactly(tmp_path: Path) -> None:
    images = [_image(40), _image(200)]
    write_scored_images(tmp_path / "set", images, [0.125, 1.0], ["one", "two"])
    items = scored_images(tmp_path / "set")
    assert [i.score for i in items] == [0.125, 1.0]
    assert all(np.array_equal(read_image(i.path), image) for i, image in zip(items, images, strict=True))


@pytest.mark.parametrize("name", ["../up", "a/b", "", ".hidden"])
def test_unsafe_names_are_not_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        write_scored_images(tmp_path, [_image(0)], [0.5], [name])


# --- labels of degraded real faces ---------------------------------------------------------------


def _labels(face: np.ndarray, name: str, severities: list[float]) -> list[float]:
    return [
        quality_label(face, apply_chain(face, [Step(name, s)], np.random.default_rng(3))) for s in severities
    ]


def _strictly_decreasing(values: list[float]) -> bool:
    return all(a > b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur", "gaussian_noise", "underexposure"])
def test_labels_fall_as_blur_noise_and_darkness_grow(aligned_face: np.ndarray, name: str) -> None:
    labels = _labels(aligned_face, name, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert _strictly_decreasing(labels), labels
    assert labels[-1] < 0.6


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_every_degradation_lowers_the_label_with_severity(aligned_face: np.ndarray, name: str) -> None:
    labels = _labels(aligned_face, name, [0.1, 0.55, 1.0])
    assert _strictly_decreasing([1.0, *labels]), labels


def test_the_pristine_crop_scores_one(aligned_face: np.ndarray) -> None:
    assert quality_label(aligned_face, aligned_face.copy()) == pytest.approx(1.0)


# --- the degradation set and its splits ----------------------------------------------------------


def test_views_are_aligned_crops_mirrors_and_jitters(photos: list[np.ndarray]) -> None:
    views = face_views(photos[0], 7, 64, 2, np.random.default_rng(0))
    assert [v.view for v in views] == [0, 1, 2, 3]
    assert {v.face_id for v in views} == {7}
    assert np.array_equal(views[1].image, cv2.flip(views[0].image, 1))
    assert all(v.image.shape == (64, 64, 3) and v.image.dtype == np.uint8 for v in views)
    assert not np.array_equal(views[2].image, views[0].image)


def test_a_photo_without_a_face_gives_no_views() -> None:
    assert face_views(np.full((120, 120, 3), 90, np.uint8), 0, 64, 2, np.random.default_rng(0)) == []


@pytest.fixture(scope="module")
def small_set(photos: list[np.ndarray]) -> list:
    return build_degradation_set(photos[:4], size=64, jitters=1, samples_per_view=3, pristine_per_view=1, seed=5)


def test_the_set_labels_every_view_of_every_face(small_set: list) -> None:
    assert len(small_set) == 4 * 3 * 4  # faces × views (crop, mirror, 1 jitter) × samples
    assert sorted({s.face_id for s in small_set}) == [0, 1, 2, 3]
    pristine = [s for s in small_set if not s.chain]
    assert len(pristine) == 12 and all(s.label == 1.0 for s in pristine)
    assert all(0.0 < s.label <= 1.0 for s in small_set)
    assert len({s.name for s in small_set}) == len(small_set)


def test_the_set_is_reproducible_from_its_seed(photos: list[np.ndarray], small_set: list) -> None:
    again = build_degradation_set(photos[:4], size=64, jitters=1, samples_per_view=3, pristine_per_view=1, seed=5)
    assert [s.label for s in again] == [s.label for s in small_set]


def test_splits_never_share_a_face() -> None:
    face_ids = [i % 9 for i in range(180)]
    split = split_by_face(face_ids, seed=3)
    parts = [{face_ids[i] for i in part} for part in (split.train, split.val, split.test)]
    assert all(parts)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sorted(split.train + split.val + split.test) == list(range(180))
    assert split_by_face(face_ids, seed=3) == split


def test_splits_need_three_faces_and_proper_fractions() -> None:
    with pytest.raises(ValueError, match="at least 3 faces"):
        split_by_face([0, 1, 0, 1])
    with pytest.raises(ValueError, match="fractions"):
        split_by_face([0, 1, 2], fractions=(0.5, 0.5, 0.0))


def test_the_folds_of_one_seed_hold_out_every_face_once() -> None:
    face_ids = [i % 30 for i in range(120)]
    held_out: list[int] = []
    for fold in range(1, 5):
        split = fold_split(face_ids, fold, 4, val_fraction=0.1, seed=7)
        parts = [{face_ids[i] for i in part} for part in (split.train, split.val, split.test)]
        assert len(parts[2]) in (7, 8) and len(parts[1]) == 3 and len(parts[0]) == 30 - 3 - len(parts[2])
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert sorted(split.train + split.val + split.test) == list(range(120))
        held_out.extend(parts[2])
    assert sorted(held_out) == list(range(30))
    assert fold_split(face_ids, 2, 4, seed=7) == fold_split(face_ids, 2, 4, seed=7)
    assert fold_split(face_ids, 2, 4, seed=7) != fold_split(face_ids, 2, 4, seed=8)


@pytest.mark.parametrize(("fold", "folds", "error"), [
    (0, 4, "K in 1..N"), (5, 4, "K in 1..N"), (1, 1, "N at least 2"), (1, 3, "cannot make 3 folds"),
])
def test_a_fold_out_of_range_or_too_few_faces_is_refused(fold: int, folds: int, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        fold_split([0, 1, 2, 3] if folds == 3 else list(range(10)), fold, folds, val_fraction=0.5)


def test_a_written_set_reads_back_with_its_face_ids(tmp_path: Path, small_set: list) -> None:
    write_degradation_set(small_set, tmp_path)
    items = scored_images(tmp_path)
    assert [i.score for i in items] == pytest.approx([s.label for s in small_set], abs=1e-6)
    face_of = read_face_ids(tmp_path)
    split = split_by_face([face_of[i.path.name] for i in items])
    train_faces = {face_of[items[i].path.name] for i in split.train}
    test_faces = {face_of[items[i].path.name] for i in split.test}
    assert train_faces and test_faces and not train_faces & test_faces


def test_ms_ssim_needs_equal_images_of_32_px() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        ms_ssim(np.zeros((16, 16)), np.zeros((16, 16)))
    with pytest.raises(ValueError, match="equal"):
        ms_ssim(np.zeros((64, 64)), np.zeros((64, 48)))


@pytest.mark.parametrize(("similarity", "label"), [(1.0, 1.0), (0.9, 0.5134), (0.8, 0.2636), (0.6, 0.0695)])
def test_calibration_matches_the_documented_points(similarity: float, label: float) -> None:
    assert calibrate(similarity) == pytest.approx(label, abs=1e-4)
