"""The models' input contract: BGR uint8 crops to ImageNet-normalised RGB tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fiqa_stream.scorers.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, crops_to_array, crops_to_tensor


def test_channels_are_swapped_to_rgb_and_normalised() -> None:
    crops = np.zeros((1, 4, 4, 3), np.uint8)
    crops[..., 0] = 255  # blue in BGR
    tensor = crops_to_tensor(crops)
    assert tensor.shape == (1, 3, 4, 4)
    assert tensor.dtype == torch.float32
    expected = [(0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
                (1 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    assert tensor[0, :, 0, 0].tolist() == pytest.approx(expected)


def test_crops_are_resized_to_the_model_input() -> None:
    crops = np.full((2, 128, 128, 3), 128, np.uint8)
    tensor = crops_to_tensor(crops, 224)
    assert tensor.shape == (2, 3, 224, 224)
    assert tensor.is_contiguous()


def test_a_single_crop_is_a_batch_of_one() -> None:
    assert crops_to_tensor(np.zeros((8, 8, 3), np.uint8)).shape == (1, 3, 8, 8)


@pytest.mark.parametrize(
    "crops", [np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 8, 8), np.uint8), np.zeros((1, 8, 8, 4), np.uint8)]
)
def test_anything_but_bgr_uint8_is_refused(crops: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 BGR"):
        crops_to_tensor(crops)


def test_the_numpy_and_torch_paths_agree() -> None:
    crops = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    array = crops_to_array(crops, 32)
    assert array.dtype == np.float32 and array.flags.c_contiguous
    assert np.array_equal(crops_to_tensor(crops, 32).numpy(), array)


def test_every_pixel_value_gets_exactly_the_arithmetic_of_the_formula() -> None:
    values = np.arange(256, dtype=np.uint8)
    # Each of the 256 values once in every channel, on a 1×256 crop.
    crops = np.stack([values, values[::-1], np.roll(values, 85)], axis=-1)[None, None]
    bgr = crops.astype(np.float32) / np.float32(255.0)
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    expected = ((bgr[..., ::-1] - mean) / std).transpose(0, 3, 1, 2)
    assert np.array_equal(crops_to_array(crops), expected)
