"""The one input contract of every model: aligned face crops to a normalised RGB batch.

Models take float32 N×3×H×W input, RGB, each channel scaled to [0, 1] and then
normalised with the ImageNet mean and standard deviation below. Crops come from
``fiqa_stream.scorers.align.align_face`` (ArcFace framing, BGR uint8, as everywhere
in the project); training and the pipeline both go through ``crops_to_array``, so a
face is prepared exactly alike in both. This module needs numpy and OpenCV only, so
an onnxruntime scorer can use it without torch; ``crops_to_tensor`` imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = np.array(IMAGENET_MEAN, np.float32)
_STD = np.array(IMAGENET_STD, np.float32)
# Every uint8 value's input per RGB channel, computed as the arithmetic would be per pixel
# (float32 (v / 255 − mean) / std), so a lookup gives the same bits in one pass.
_TABLE = np.ascontiguousarray(((np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0)) - _MEAN) / _STD).T


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """A square crop resized to ``size`` (area averaging down, bilinear up); unchanged if it fits."""
    if crop.shape[0] == size and crop.shape[1] == size:
        return crop
    shrinking = crop.shape[0] > size or crop.shape[1] > size
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def crops_to_array(crops: np.ndarray, size: int | None = None) -> np.ndarray:
    """Aligned BGR uint8 crops to the models' input, as a numpy array.

    Args:
        crops: N×H×W×3 uint8 BGR face crops (or one H×W×3 crop, treated as N = 1).
        size: side of the model's square input; crops of another size are resized.
            None keeps the crops' size.

    Returns:
        float32 N×3×size×size RGB array, ImageNet-normalised, C-contiguous.

    Raises:
        ValueError: ``crops`` is not uint8 with 3 channels.
    """
    batch = crops[None] if crops.ndim == 3 else crops
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise ValueError(f"crops must be N×H×W×3 uint8 BGR, got shape {crops.shape} dtype {crops.dtype}")
    if size is not None:
        batch = np.stack([resize_crop(crop, size) for crop in batch])
    n, height, width = batch.shape[:3]
    out = np.empty((n, 3, height, width), np.float32)
    # cv2.split and cv2.LUT over the crops stacked into one image: the same lookup as
    # numpy's take, about five times faster.
    planes = cv2.split(np.ascontiguousarray(batch).reshape(n * height, width, 3))
    for channel in range(3):
        # BGR in, RGB out: output channel c reads input channel 2 − c.
        out[:, channel] = cv2.LUT(planes[2 - channel], _TABLE[channel]).reshape(n, height, width)
    return out


def crops_to_tensor(crops: np.ndarray, size: int | None = None) -> torch.Tensor:
    """``crops_to_array`` as a torch tensor (see there)."""
    import torch

    return torch.from_numpy(crops_to_array(crops, size))
