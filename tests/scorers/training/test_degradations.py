"""The degradation operators and their random chains."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_stream.scorers.training.degradations import (
    DEGRADATIONS,
    Step,
    apply_chain,
    disk_kernel,
    line_kernel,
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
