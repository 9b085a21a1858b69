"""The degradation operators and their random chains."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_stream.scorers.training.degradations import (
    CAMERA,
    DEGRADATIONS,
    ORIGINAL,
    Step,
    apply_chain,
    disk_kernel,
    line_kernel,
    native_scale,
    random_chain,
)


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_degradations_keep_size_and_type_and_change_the_image(aligned_face: np.ndarray, name: str) -> None:
    out = DEGRADATIONS[name](aligned_face, 0.5, np.random.default_rng(0))
    assert out.shape == aligned_face.shape
    assert out.dtype == np.uint8
    assert not np.array_equal(out, aligned_face)


def test_kernels_are_normalised_and_centred() -> None:
    for kernel in (disk_kernel(3.3), line_kernel(9.0, 30.0), line_kernel(1.0, 0.0)):
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        assert kernel.shape[0] % 2 == 1
        assert kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] > 0


def test_chains_are_short_ordered_and_free_of_opposites() -> None:
    rng = np.random.default_rng(0)
    order = list(DEGRADATIONS)
    for _ in range(300):
        names = [step.name for step in random_chain(rng)]
        assert 1 <= len(names) <= 3
        assert names == sorted(names, key=order.index)
        assert not {"underexposure", "overexposure"} <= set(names)
        assert not {"jpeg", "video_compression"} <= set(names)


def test_chains_reject_unknown_steps_and_severities(aligned_face: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown degradation 'sepia'"):
        apply_chain(aligned_face, [Step("sepia", 0.5)], np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        apply_chain(aligned_face, [Step("jpeg", 1.5)], np.random.default_rng(0))


def test_steps_print_as_name_and_severity() -> None:
    assert str(Step("jpeg", 0.25)) == "jpeg:0.25"


def _change(reference: np.ndarray, image: np.ndarray) -> float:
    return float(np.abs(image.astype(np.float64) - reference).mean())


@pytest.mark.parametrize("name", ["low_resolution", "low_light", "h264", "decode_corruption", "motion_blur"])
def test_camera_degradations_grow_with_severity(aligned_face: np.ndarray, name: str) -> None:
    changes = [_change(aligned_face, DEGRADATIONS[name](aligned_face, s, np.random.default_rng(3))) for s in (0.1, 1.0)]
    assert changes[1] > 1.5 * changes[0]


def test_low_resolution_reaches_16_px_between_the_eyes() -> None:
    assert native_scale(0.0) == 1.0
    assert native_scale(1.0) * 70.5 == pytest.approx(16.0)
    tiny = DEGRADATIONS["low_resolution"](np.tile(np.arange(224, dtype=np.uint8)[None, :, None] % 2 * 255, (224, 1, 3)),
                                          1.0, np.random.default_rng(0))
    # A one-pixel stripe pattern cannot survive a face captured at a quarter of the size.
    assert tiny.std() < 20


def test_h264_is_a_real_encoder_with_blocks(aligned_face: np.ndarray) -> None:
    out = DEGRADATIONS["h264"](aligned_face, 1.0, np.random.default_rng(0)).astype(np.float64)
    steps = np.abs(np.diff(out, axis=1)).mean(axis=(0, 2))
    on_grid = (np.arange(steps.size) + 1) % 8 == 0
    assert steps[on_grid].mean() > 1.2 * steps[~on_grid].mean()


def test_camera_mix_draws_by_share_and_the_default_draws_keep_the_original_set() -> None:
    rng = np.random.default_rng(0)
    drawn = [step.name for _ in range(2000) for step in random_chain(rng, mix=CAMERA, max_steps=1)]
    assert set(drawn) == set(CAMERA)
    assert drawn.count("motion_blur") > 3 * drawn.count("gaussian_noise")
    plain = {step.name for _ in range(500) for step in random_chain(rng)}
    assert plain == set(ORIGINAL)
