"""Batched GPU preprocessing against the pipeline's own CPU path.

The reference is what the CPU pipeline does one face at a time:
``crops_to_array(aligned_crops(faces, S))`` (cv2.warpAffine, bilinear, edge pixels
repeated), exactly what ``FiqaScorer`` feeds its model, and the heuristic scorer's
exposure and sharpness on the 112×112 aligned grey face for the components.

CI has no GPU, so the CUDA kernels' source is also run on the host: compiled with g++
behind a small shim (one thread per block, blocks looped, C++ ``_Float16`` for the PTX
float16 store), it must compute that reference. Launch configuration, the warp-shuffle
reduction across threads, CuPy, DLPack and the streams are left to the GPU parity test.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from fiqa_stream.scorers import heuristic
from fiqa_stream.scorers.align import ARCFACE_TEMPLATE
from fiqa_stream.scorers.fiqa import aligned_crops
from fiqa_stream.scorers.models.preprocess import IMAGENET_STD, crops_to_array
from fiqa_stream.scorers.prep import STATS, channel_affine, finish_components, layout_faces
from fiqa_stream.scorers.prep_cuda import kernel_source
from fiqa_stream.types import Face

# One grey level in normalised units (the smallest channel std divides it).
LEVEL = 1.0 / (255.0 * min(IMAGENET_STD))
# cv2 quantises sampling positions to 1/32 px and rounds to uint8; the kernels sample
# exactly in float32. On smooth frames that differs by at most one grey level.
MAX_DIFF = 1.0 * LEVEL
# The float16 store: half a unit in the last place below 4 is 2**-10 (plus float32 noise).
HALF_ULP = 2.0**-10 + 1e-5
# float16 output of the GPU path: half a unit in the last place at |x| < 4, plus float32 noise.
GPU_MAX_DIFF = 2.5e-3


def smooth_frame(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Random colour texture, blurred so that neighbouring pixels differ by a few levels."""
    noise = rng.integers(0, 256, (height, width, 3), np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def random_faces(rng: np.random.Generator, frames: list[np.ndarray], count: int) -> list[Face]:
    """Faces of random position (some partly outside the frame), size, roll and landmark noise;
    every fourth has no landmarks, so its box is used."""
    template = ARCFACE_TEMPLATE / 112.0 - 0.5
    faces = []
    for i in range(count):
        frame = frames[i % len(frames)]
        height, width = frame.shape[:2]
        cx, cy, side = rng.uniform(-20, width + 20), rng.uniform(-20, height + 20), rng.uniform(16, 200)
        angle = rng.uniform(-0.6, 0.6)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = template @ rotation.T * side + [cx, cy] + rng.normal(0, side / 40, (5, 2))
        box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)
        faces.append(Face(frame, box, 0.9, None if i % 4 == 3 else points.astype(np.float32)))
    return faces


@pytest.fixture(scope="module")
def batch() -> list[Face]:
    rng = np.random.default_rng(6)
    frames = [smooth_frame(rng, 360, 640), smooth_frame(rng, 480, 272), smooth_frame(rng, 720, 1280)]
    return random_faces(rng, frames, 24)


def reference(faces: list[Face], size: int) -> np.ndarray:
    """What ``FiqaScorer`` feeds its model."""
    return crops_to_array(aligned_crops(faces, size))


def test_frames_shared_by_faces_are_packed_once(batch: list[Face]) -> None:
    layout = layout_faces(batch, 112)
    assert len(layout.frames) == 3
    assert layout.nbytes == sum(frame.size for frame in layout.frames)
    assert list(layout.face_frames[:6]) == [0, 1, 2, 0, 1, 2]


def test_frames_that_are_not_bgr_uint8_are_refused() -> None:
    face = Face(np.zeros((10, 10), np.uint8), np.array([0, 0, 5, 5], np.float32), 1.0, None)
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        layout_faces([face], 112)


def test_the_source_names_both_kernels() -> None:
    source = kernel_source()
    assert 'extern "C" __global__ void warp_normalise(' in source
    assert 'extern "C" __global__ void components(' in source


# The CUDA kernels on the host.

SHIM = r"""
#include <algorithm>
#include <cmath>
using std::max;
using std::min;
struct Dim { unsigned x; };
static Dim blockIdx, threadIdx, blockDim;
#define __device__
#define __forceinline__ inline
#define __global__
#define __shared__ static
#define __syncthreads()
static inline double __shfl_down_sync(unsigned, double, int) { return 0.0; }
"""
HALF_PTX = """    unsigned short half;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(half) : "f"(value));
    return half;"""
HALF_HOST = "    _Float16 h = (_Float16)value; unsigned short bits; __builtin_memcpy(&bits, &h, 2); return bits;"
RUNNERS = r"""
extern "C" void run_warp(const unsigned char* p, const long long* o, const int* s, const int* ff, const float* m,
                         const float* sc, const float* b, int faces, int size, int cl, unsigned short* out) {
    blockDim.x = 1; threadIdx.x = 0;
    for (long long i = 0; i < (long long)faces * size * size; ++i) {
        blockIdx.x = (unsigned)i;
        warp_normalise(p, o, s, ff, m, sc, b, faces, size, cl, out);
    }
}
extern "C" void run_components(const unsigned char* p, const long long* o, const int* s, const int* ff,
                               const float* m, double* st, int faces) {
    blockDim.x = 1; threadIdx.x = 0;
    for (int n = 0; n < faces; ++n) { blockIdx.x = n; components(p, o, s, ff, m, st); }
}
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed")
    source = kernel_source()
    assert HALF_PTX in source
    folder = tmp_path_factory.mktemp("kernels")
    (folder / "prep.cpp").write_text(SHIM + source.replace(HALF_PTX, HALF_HOST) + RUNNERS)
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(folder / "prep.so"), str(folder / "prep.cpp")],
                   check=True, capture_output=True)
    return ctypes.CDLL(str(folder / "prep.so"))


def pointer(array: np.ndarray) -> ctypes.c_void_p:
    assert array.flags.c_contiguous
    return array.ctypes.data_as(ctypes.c_void_p)


def on_host(
    kernels: ctypes.CDLL, faces: list[Face], size: int, channels_last: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernels' float32 batch (indexed N×3×S×S), sharpness and exposure, run on the host."""
    n = len(faces)
    layout = layout_faces(faces, size)
    pixels = np.empty(layout.nbytes, np.uint8)
    layout.pack_into(pixels)
    scale, bias = channel_affine()
    out = np.zeros((n, size, size, 3) if channels_last else (n, 3, size, size), np.float16)
    stats = np.zeros((n, STATS), np.float64)
    where = [pointer(np.ascontiguousarray(a)) for a in (pixels, layout.offsets, layout.shapes, layout.face_frames)]
    kernels.run_warp(*where, pointer(layout.model_maps), pointer(scale), pointer(bias), n, size,
                     int(channels_last), pointer(out))
    kernels.run_components(*where, pointer(layout.grey_maps), pointer(stats), n)
    batch = out.astype(np.float32)
    sharpness, exposure = finish_components(stats)
    return (batch.transpose(0, 3, 1, 2) if channels_last else batch), sharpness, exposure


@pytest.mark.parametrize("size", [112, 224])
def test_the_kernels_compute_what_the_scorer_feeds_its_model(
    kernels: ctypes.CDLL, batch: list[Face], size: int
) -> None:
    prepared, _, _ = on_host(kernels, batch, size)
    assert prepared.shape == (len(batch), 3, size, size)
    difference = np.abs(prepared - reference(batch, size))
    assert difference.max() <= MAX_DIFF + HALF_ULP
    assert difference.mean() < 0.3 * LEVEL


def test_channels_last_holds_the_same_values(kernels: ctypes.CDLL, batch: list[Face]) -> None:
    planar, _, _ = on_host(kernels, batch, 112)
    packed, _, _ = on_host(kernels, batch, 112, channels_last=True)
    np.testing.assert_array_equal(packed, planar)


def test_exposure_is_the_heuristic_scorers(kernels: ctypes.CDLL, batch: list[Face]) -> None:
    _, _, exposure = on_host(kernels, batch, 112)
    expected = [heuristic._exposure(heuristic._aligned_grey(face)) for face in batch]
    np.testing.assert_allclose(exposure, expected, atol=0.01)


def test_sharpness_is_the_heuristic_focus_term_on_clean_frames(kernels: ctypes.CDLL, batch: list[Face]) -> None:
    # Smooth synthetic frames have neither sensor noise nor JPEG blocks, so the heuristic's
    # two penalties are 1 and its sharpness is the focus term alone.
    _, sharpness, _ = on_host(kernels, batch, 112)
    expected = heuristic._sharpness(np.stack([heuristic._aligned_grey(face) for face in batch]), batch)
    np.testing.assert_allclose(sharpness, expected, atol=0.02)
    assert np.ptp(sharpness) > 0.3


def test_a_blurred_face_is_less_sharp(kernels: ctypes.CDLL, astronaut) -> None:  # type: ignore[no-untyped-def]
    sharp = astronaut.faces()
    blurred = astronaut.faces(cv2.GaussianBlur(astronaut.image, (0, 0), 3.0))
    _, sharpness, _ = on_host(kernels, sharp + blurred, 224)
    assert sharpness[0] > sharpness[1] + 0.2


# The CUDA preprocessor on a GPU.


@pytest.mark.gpu
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_equals_the_cpu_path(batch: list[Face], channels_last: bool) -> None:
    from fiqa_stream.scorers.prep_cuda import CudaPreprocessor

    cpu = reference(batch, 224)
    with CudaPreprocessor(224, "cuda:0", channels_last=channels_last) as gpu:
        first = gpu.prepare(batch[:5])
        prepared = gpu.prepare(batch)  # reuses (and grows) the upload buffers
        assert prepared.batch.dtype.is_floating_point and prepared.batch.element_size() == 2
        assert prepared.batch.is_contiguous(memory_format=_torch().channels_last) == channels_last
        on_cpu = prepared.batch.float().cpu().numpy()
        sharpness, exposure = prepared.sharpness.cpu().numpy(), prepared.exposure.cpu().numpy()
        head = first.batch.float().cpu().numpy()
    assert np.abs(on_cpu - cpu).max() <= MAX_DIFF + GPU_MAX_DIFF
    assert np.abs(head - cpu[:5]).max() <= MAX_DIFF + GPU_MAX_DIFF
    # The host tolerances plus 0.01: rounding to uint8 before the grey conversion can flip
    # a level where the GPU's float32 sums differ from the host's.
    expected_sharpness = heuristic._sharpness(np.stack([heuristic._aligned_grey(face) for face in batch]), batch)
    expected_exposure = [heuristic._exposure(heuristic._aligned_grey(face)) for face in batch]
    np.testing.assert_allclose(sharpness, expected_sharpness, atol=0.03)
    np.testing.assert_allclose(exposure, expected_exposure, atol=0.02)


def _torch():  # type: ignore[no-untyped-def]
    import torch

    return torch
