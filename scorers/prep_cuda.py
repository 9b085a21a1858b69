"""Batched face preprocessing on a CUDA GPU with CuPy (see ``prep`` for the function).

Frames are packed into a pinned host buffer and copied to the device asynchronously
on the preprocessor's own CUDA stream, once per distinct frame; one kernel launch then
warps, normalises and lays out the whole batch in float16, a second reads the
sharpness and exposure statistics of every face (one thread block per face). The
batch reaches torch through DLPack without a copy.

Needs CuPy (``pip install 'fiqa-stream[gpu]'``) and a CUDA build of torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.errors import DependencyError
from fiqa_stream.scorers.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from fiqa_stream.scorers.prep import (
    CENTRE_COLS,
    CENTRE_ROWS,
    GREY_SIZE,
    REBLUR,
    STATS,
    FaceLayout,
    Prepared,
    channel_affine,
    finish_components,
    layout_faces,
)
from fiqa_stream.types import Face

_WARP_THREADS = 256
_BLOCK_THREADS = 256

# The float16 store goes through PTX so the kernel needs no CUDA headers at compile time.
_SOURCE = r"""
__device__ __forceinline__ unsigned short to_half(float value) {
    unsigned short half;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(half) : "f"(value));
    return half;
}

__device__ __forceinline__ float tap(const unsigned char* pixels, long long base, int width,
                                     int y, int x, int channel) {
    return (float)pixels[base + ((long long)y * width + x) * 3 + channel];
}

// cv2.warpAffine's INTER_LINEAR with BORDER_REPLICATE: every tap clamped on its own.
__device__ __forceinline__ float bilinear(const unsigned char* pixels, long long base, int height,
                                          int width, float sx, float sy, int channel) {
    float fx0 = floorf(sx), fy0 = floorf(sy);
    float fx = sx - fx0, fy = sy - fy0;
    int x0 = (int)fx0, y0 = (int)fy0;
    int xa = min(max(x0, 0), width - 1), xb = min(max(x0 + 1, 0), width - 1);
    int ya = min(max(y0, 0), height - 1), yb = min(max(y0 + 1, 0), height - 1);
    float top = tap(pixels, base, width, ya, xa, channel) * (1.0f - fx)
              + tap(pixels, base, width, ya, xb, channel) * fx;
    float bottom = tap(pixels, base, width, yb, xa, channel) * (1.0f - fx)
                 + tap(pixels, base, width, yb, xb, channel) * fx;
    return top * (1.0f - fy) + bottom * fy;
}

extern "C" __global__ void warp_normalise(
    const unsigned char* pixels, const long long* offsets, const int* shapes, const int* face_frames,
    const float* maps, const float* scale, const float* bias, int faces, int size, int channels_last,
    unsigned short* out) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)size * size;
    if (index >= plane * faces) return;
    int n = (int)(index / plane);
    int y = (int)((index % plane) / size), x = (int)(index % size);
    int frame = face_frames[n];
    long long base = offsets[frame];
    int height = shapes[2 * frame], width = shapes[2 * frame + 1];
    const float* m = maps + 6 * n;
    float sx = m[0] * (float)x + m[1] * (float)y + m[2];
    float sy = m[3] * (float)x + m[4] * (float)y + m[5];
    for (int channel = 0; channel < 3; ++channel) {
        // Output channel 0 is red: BGR frame channel 2.
        float value = bilinear(pixels, base, height, width, sx, sy, 2 - channel) * scale[channel] + bias[channel];
        long long at = channels_last ? ((long long)n * plane + (long long)y * size + x) * 3 + channel
                                     : ((long long)n * 3 + channel) * plane + (long long)y * size + x;
        out[at] = to_half(value);
    }
}

#define GREY GREY_SIZE
#define R0 CENTRE_R0
#define R1 CENTRE_R1
#define C0 CENTRE_C0
#define C1 CENTRE_C1
#define HALF (REBLUR / 2)
#define SR0 (R0 - HALF - 1)
#define SC0 (C0 - HALF - 1)
#define SROWS (R1 - R0 + 2 * HALF + 2)
#define SCOLS (C1 - C0 + 2 * HALF + 2)
#define SUMS 7

__device__ __forceinline__ double warp_sum(double value) {
    for (int step = 16; step > 0; step >>= 1) value += __shfl_down_sync(0xffffffffu, value, step);
    return value;
}

extern "C" __global__ void components(
    const unsigned char* pixels, const long long* offsets, const int* shapes, const int* face_frames,
    const float* maps, double* stats) {
    __shared__ unsigned char grey[GREY * GREY];
    __shared__ float smooth[SROWS * SCOLS];
    __shared__ double partial[SUMS][32];
    int n = blockIdx.x;
    int frame = face_frames[n];
    long long base = offsets[frame];
    int height = shapes[2 * frame], width = shapes[2 * frame + 1];
    const float* m = maps + 6 * n;
    // The aligned face as cv2 gives it: each BGR channel rounded to uint8, then
    // OpenCV's fixed-point BGR to grey.
    for (int i = threadIdx.x; i < GREY * GREY; i += blockDim.x) {
        int y = i / GREY, x = i % GREY;
        float sx = m[0] * (float)x + m[1] * (float)y + m[2];
        float sy = m[3] * (float)x + m[4] * (float)y + m[5];
        int blue = (int)floorf(bilinear(pixels, base, height, width, sx, sy, 0) + 0.5f);
        int green = (int)floorf(bilinear(pixels, base, height, width, sx, sy, 1) + 0.5f);
        int red = (int)floorf(bilinear(pixels, base, height, width, sx, sy, 2) + 0.5f);
        grey[i] = (unsigned char)((blue * 1868 + green * 9617 + red * 4899 + 8192) >> 14);
    }
    __syncthreads();
    // Median 3x3 over the centre and the re-blur's reach (inside the face: no border rule).
    for (int i = threadIdx.x; i < SROWS * SCOLS; i += blockDim.x) {
        int y = SR0 + i / SCOLS, x = SC0 + i % SCOLS;
        int v[9];
        int k = 0;
        for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) v[k++] = grey[(y + dy) * GREY + x + dx];
        for (int a = 1; a < 9; ++a) {
            int key = v[a], b = a - 1;
            while (b >= 0 && v[b] > key) { v[b + 1] = v[b]; --b; }
            v[b + 1] = key;
        }
        smooth[i] = (float)v[4];
    }
    __syncthreads();
    double sums[SUMS] = {0, 0, 0, 0, 0, 0, 0};  // lost x, detail x, lost y, detail y, total, squares, clipped
    for (int i = threadIdx.x; i < (R1 - R0) * (C1 - C0); i += blockDim.x) {
        int y = R0 + i / (C1 - C0), x = C0 + i % (C1 - C0);
        int sy = y - SR0, sx = x - SC0;
        if (x + 1 < C1) {
            float here = 0.0f, there = 0.0f;
            for (int k = -HALF; k <= HALF; ++k) {
                here += smooth[sy * SCOLS + sx + k];
                there += smooth[sy * SCOLS + sx + 1 + k];
            }
            float detail = fabsf(smooth[sy * SCOLS + sx + 1] - smooth[sy * SCOLS + sx]);
            float kept = fabsf(there - here) / (float)REBLUR;
            sums[0] += fmaxf(detail - kept, 0.0f);
            sums[1] += detail;
        }
        if (y + 1 < R1) {
            float here = 0.0f, there = 0.0f;
            for (int k = -HALF; k <= HALF; ++k) {
                here += smooth[(sy + k) * SCOLS + sx];
                there += smooth[(sy + 1 + k) * SCOLS + sx];
            }
            float detail = fabsf(smooth[(sy + 1) * SCOLS + sx] - smooth[sy * SCOLS + sx]);
            float kept = fabsf(there - here) / (float)REBLUR;
            sums[2] += fmaxf(detail - kept, 0.0f);
            sums[3] += detail;
        }
        int value = grey[y * GREY + x];
        sums[4] += value;
        sums[5] += (double)value * value;
        sums[6] += (value <= 5 || value >= 250) ? 1.0 : 0.0;
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int s = 0; s < SUMS; ++s) {
        double total = warp_sum(sums[s]);
        if (lane == 0) partial[s][warp] = total;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int warps = (blockDim.x + 31) / 32;
        for (int s = 0; s < SUMS; ++s) {
            sums[s] = 0.0;
            for (int w = 0; w < warps; ++w) sums[s] += partial[s][w];
        }
        double count = (double)((R1 - R0) * (C1 - C0));
        double ratio = fmin(1.0, fmin(sums[0] / fmax(sums[1], 1e-6), sums[2] / fmax(sums[3], 1e-6)));
        double mean = sums[4] / count;
        stats[n * 4 + 0] = ratio;
        stats[n * 4 + 1] = mean;
        stats[n * 4 + 2] = sqrt(fmax(sums[5] / count - mean * mean, 0.0));
        stats[n * 4 + 3] = sums[6] / count;
    }
}
"""


def kernel_source() -> str:
    """The CUDA C source with the shared constants filled in."""
    constants = {
        "GREY_SIZE": GREY_SIZE,
        "CENTRE_R0": CENTRE_ROWS[0],
        "CENTRE_R1": CENTRE_ROWS[1],
        "CENTRE_C0": CENTRE_COLS[0],
        "CENTRE_C1": CENTRE_COLS[1],
        "REBLUR": REBLUR,
    }
    header = "".join(f"#define {name} {value}\n" for name, value in constants.items())
    return header + _SOURCE


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DependencyError.missing(module, "gpu", "GPU preprocessing") from error


class CudaPreprocessor(ClosedOnExit):
    """The pipeline's face preprocessing (see ``prep``) on one GPU, in float16, with reused upload buffers.

    Args:
        size: side S of the model's square input.
        device: ``"cuda:N"`` (see ``fiqa_stream.device.resolve_device``).
        mean: per-RGB-channel mean of the [0, 1] pixels.
        std: per-RGB-channel standard deviation.
        channels_last: lay the batch out N×S×S×3 in memory (the tensor is still N×3×S×S).

    Raises:
        DependencyError: CuPy or torch is missing.
    """

    def __init__(
        self,
        size: int,
        device: str = "cuda:0",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channels_last: bool = False,
    ) -> None:
        self._cp = _require("cupy")
        self._torch = _require("torch")
        self.size = size
        self.channels_last = channels_last
        self._device = self._cp.cuda.Device(int(device.partition(":")[2] or 0))
        with self._device:
            self.stream = self._cp.cuda.Stream(non_blocking=True)
            module = self._cp.RawModule(code=kernel_source())
            self._warp = module.get_function("warp_normalise")
            self._components = module.get_function("components")
            scale, bias = channel_affine(mean, std)
            self._scale = self._cp.asarray(scale)
            self._bias = self._cp.asarray(bias)
        self._pinned = np.empty(0, np.uint8)
        self._frames: Any = None
        self._uploaded: Any = None

    def prepare(self, faces: Sequence[Face]) -> Prepared:
        """Align, resize and normalise a batch of faces on the GPU, and read their components.

        Returns:
            A float16 N×3×S×S CUDA tensor (DLPack view of the CuPy output) and (N,) float64
            CUDA tensors of sharpness and exposure. Work is queued on ``stream``; torch's
            current stream waits for it when the tensors are handed over. The memory comes
            from CuPy's pool: keep the tensors alive until torch's work on them is done.
        """
        return self.prepare_packed(layout_faces(faces, self.size))

    def prepare_packed(self, layout: FaceLayout) -> Prepared:
        """``prepare`` for a ready layout: uploads its frames, then runs the kernels."""
        with self._device, self.stream:
            return self.prepare_uploaded(layout, self._upload(layout))

    def prepare_uploaded(self, layout: FaceLayout, pixels: Any) -> Prepared:
        """The kernels alone, on frames already on this GPU.

        Args:
            layout: where each face's frame lies in ``pixels``.
            pixels: flat uint8 CuPy array of the packed frames (``layout.pack_into``'s layout).
        """
        cp = self._cp
        n = len(layout.face_frames)
        with self._device, self.stream:
            offsets = cp.asarray(layout.offsets)
            shapes = cp.asarray(layout.shapes)
            face_frames = cp.asarray(layout.face_frames)
            model_maps = cp.asarray(layout.model_maps)
            grey_maps = cp.asarray(layout.grey_maps)
            shape = (n, self.size, self.size, 3) if self.channels_last else (n, 3, self.size, self.size)
            batch = cp.empty(shape, cp.float16)
            stats = cp.zeros((n, STATS), cp.float64)
            if n:
                total = n * self.size * self.size
                blocks = (total + _WARP_THREADS - 1) // _WARP_THREADS
                self._warp(
                    (blocks,), (_WARP_THREADS,),
                    (pixels, offsets, shapes, face_frames, model_maps, self._scale, self._bias,
                     np.int32(n), np.int32(self.size), np.int32(self.channels_last), batch),
                )
                self._components((n,), (_BLOCK_THREADS,), (pixels, offsets, shapes, face_frames, grey_maps, stats))
            sharpness, exposure = finish_components(stats, cp)
            # Handed over inside this stream's context: torch's current stream then waits
            # for it (DLPack stream exchange) instead of racing the kernels.
            tensor = self._torch.from_dlpack(batch)
            if self.channels_last:
                tensor = tensor.permute(0, 3, 1, 2)
            return Prepared(tensor, self._torch.from_dlpack(sharpness), self._torch.from_dlpack(exposure))

    def _upload(self, layout: FaceLayout) -> Any:
        """The packed frames on the device, copied from pinned memory on ``stream``."""
        cp = self._cp
        if self._uploaded is not None:
            # The pinned buffer is refilled only once its previous copy has left it.
            self._uploaded.synchronize()
        if self._pinned.size < layout.nbytes:
            capacity = max(layout.nbytes, 2 * self._pinned.size)
            memory = cp.cuda.alloc_pinned_memory(capacity)
            self._pinned = np.frombuffer(memory, np.uint8, capacity)
            self._frames = cp.empty(capacity, cp.uint8)
        layout.pack_into(self._pinned)
        device_view = self._frames[: layout.nbytes]
        device_view.set(self._pinned[: layout.nbytes], stream=self.stream)
        self._uploaded = cp.cuda.Event(block=False, disable_timing=True)
        self._uploaded.record(self.stream)
        return device_view

    def close(self) -> None:
        """Wait for queued work and drop the buffers."""
        self.stream.synchronize()
        self._pinned = np.empty(0, np.uint8)
        self._frames = None
        self._uploaded = None
