"""Labelled face images on disk: reading and writing the layouts a user can train and evaluate on.

Accepted layouts (``scored_images(path)``):

* **Challenge** (VQualA 2025 FIQA): a header-less CSV of ``image_name,score`` rows
  and the images it names. ``path`` is the CSV, or a folder holding a ``labels.csv``
  or else exactly one ``*.csv``. Images are looked up in the CSV's folder, then in
  its ``images/`` subfolder; a name without an extension is tried as ``.png``,
  ``.jpg``, ``.jpeg`` and ``.bmp`` (as the challenge's reference loader does).
* **GFIQA-style**: the same, but the CSV has a header row. The image column is the
  first of ``image``, ``image_name``, ``img``, ``filename``, ``file``, ``name`` and
  the score column the first of ``mos``, ``mapped_score``, ``score``, ``quality``,
  ``label`` (case-insensitive). Scores are taken as they are; pass ``score_range`` to
  map another scale (e.g. MOS on 1-5) linearly to [0, 1].

Names that would lead outside the image folder (absolute paths, ``..``) are refused.
``write_scored_images`` writes the challenge layout, so what this project generates
reads back through the same loader.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models.preprocess import crops_to_tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_COLUMNS = ("image", "image_name", "img", "filename", "file", "name")
SCORE_COLUMNS = ("mos", "mapped_score", "score", "quality", "label")
LABELS_CSV = "labels.csv"


@dataclass(frozen=True)
class ScoredImage:
    """One labelled image: its file and its score."""

    path: Path
    score: float


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _find_csv(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"data path {path} does not exist")
    if (path / LABELS_CSV).is_file():
        return path / LABELS_CSV
    found = sorted(path.glob("*.csv"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ConfigError(
            f"data folder {path} must hold labels.csv or exactly one CSV of image_name,score rows; found {names}"
        )
    return found[0]


def _columns(header: list[str], csv_path: Path) -> tuple[int, int]:
    lowered = [h.strip().lower() for h in header]
    image = next((lowered.index(c) for c in IMAGE_COLUMNS if c in lowered), None)
    score = next((lowered.index(c) for c in SCORE_COLUMNS if c in lowered), None)
    if image is None or score is None:
        raise ConfigError(
            f"{csv_path}: header {header} names no image column ({', '.join(IMAGE_COLUMNS)}) "
            f"or no score column ({', '.join(SCORE_COLUMNS)})"
        )
    return image, score


def _resolve_image(name: str, folders: Sequence[Path], csv_path: Path) -> Path:
    candidates = [name] if Path(name).suffix.lower() in IMAGE_SUFFIXES else [name + s for s in IMAGE_SUFFIXES]
    for folder in folders:
        root = folder.resolve()
        for candidate in candidates:
            path = (root / candidate).resolve()
            if not path.is_relative_to(root):
                raise ConfigError(f"{csv_path}: image name '{name}' leads outside {root}")
            if path.is_file():
                return path
    raise ConfigError(f"{csv_path}: image '{name}' not found in {', '.join(str(f) for f in folders)}")


def scored_images(path: Path, score_range: tuple[float, float] | None = None) -> list[ScoredImage]:
    """The labelled images of a challenge or GFIQA-style dataset (see the module docstring).

    Args:
        path: the CSV, or a folder holding ``labels.csv`` or else exactly one CSV.
        score_range: (low, high) of the CSV's scores, mapped linearly to [0, 1]; None
            keeps them as they are.

    Raises:
        ConfigError: no CSV, a malformed row, an unknown header, a missing or unsafe image.
    """
    csv_path = _find_csv(Path(path))
    folders = [csv_path.parent, csv_path.parent / "images"]
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ConfigError(f"{csv_path} holds no rows")
    headerless = len(rows[0]) >= 2 and _is_number(rows[0][1])
    image_col, score_col = (0, 1) if headerless else _columns(rows[0], csv_path)
    body = rows if headerless else rows[1:]
    low, high = score_range if score_range is not None else (0.0, 1.0)
    if high <= low:
        raise ConfigError(f"score_range must rise, got {score_range}")
    items = []
    for number, row in enumerate(body, start=1):
        try:
            raw = float(row[score_col])
            name = row[image_col].strip()
        except (IndexError, ValueError) as e:
            raise ConfigError(f"{csv_path}: row {number} {row} is not image,score") from e
        if not np.isfinite(raw):
            raise ConfigError(f"{csv_path}: row {number} has a non-finite score")
        items.append(ScoredImage(_resolve_image(name, folders, csv_path), (raw - low) / (high - low)))
    return items


def read_image(path: Path) -> np.ndarray:
    """An image file as BGR uint8.

    Raises:
        ConfigError: the file cannot be decoded.
    """
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"cannot decode image {path}")
    return image


class ScoredImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Labelled images as model input: yields (3×S×S float tensor, float32 score).

    Images are read as BGR, passed through ``augment`` when given, resized to the
    model's square input and normalised by ``crops_to_tensor`` (the models' one
    input contract).

    Args:
        items: the labelled images, e.g. from ``scored_images``.
        input_size: the model's input side S.
        augment: BGR uint8 → BGR uint8, applied before resizing (training only).
    """

    def __init__(
        self,
        items: Sequence[ScoredImage],
        input_size: int,
        augment: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.items = list(items)
        self.input_size = input_size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.items[index]
        image = read_image(item.path)
        if self.augment is not None:
            image = self.augment(image)
        return crops_to_tensor(image, self.input_size)[0], torch.tensor(item.score, dtype=torch.float32)

    @property
    def scores(self) -> np.ndarray:
        """All labels, in order, without reading any image."""
        return np.array([item.score for item in self.items], dtype=np.float32)


def write_scored_images(
    root: Path, images: Sequence[np.ndarray], scores: Sequence[float], names: Sequence[str]
) -> Path:
    """Write BGR images and their scores in the challenge layout (PNG files and a header-less CSV).

    Args:
        root: the folder to create or fill.
        images: BGR uint8 images.
        scores: one score per image.
        names: one file stem per image (letters, digits, ``_``, ``-``, ``.``), written as ``<name>.png``.

    Returns:
        The CSV's path, ``root/labels.csv``.

    Raises:
        ValueError: the sequences differ in length or a name is unsafe.
    """
    if not len(images) == len(scores) == len(names):
        raise ValueError(f"got {len(images)} images, {len(scores)} scores and {len(names)} names")
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for image, score, name in zip(images, scores, names, strict=True):
        if not name or not all(c.isalnum() or c in "_-." for c in name) or name.startswith("."):
            raise ValueError(f"unsafe image name '{name}'")
        file_name = f"{name}.png"
        if not cv2.imwrite(str(root / file_name), image):
            raise OSError(f"could not write {root / file_name}")
        rows.append((file_name, f"{float(score):.6f}"))
    csv_path = root / LABELS_CSV
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return csv_path
