"""Batched face preprocessing on the CPU with numba, parallel over faces (see ``prep``)."""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

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

_R0, _R1 = CENTRE_ROWS
_C0, _C1 = CENTRE_COLS
_HALF = REBLUR // 2


def prepare_faces(
    faces: Sequence[Face],
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    channels_last: bool = False,
) -> Prepared:
    """Align, resize and normalise a batch of faces, and read their sharpness and exposure.

    Args:
        faces: faces of one or several frames.
        size: side S of the model's square input.
        mean: per-RGB-channel mean of the [0, 1] pixels.
        std: per-RGB-channel standard deviation.
        channels_last: lay the batch out N×S×S×3 in memory (the returned array is still
            indexed N×3×S×S).

    Returns:
        float32 N×3×S×S batch and (N,) float64 sharpness and exposure.
    """
    layout = layout_faces(faces, size)
    pixels = np.empty(layout.nbytes, np.uint8)
    layout.pack_into(pixels)
    return prepare_packed(layout, pixels, size, mean, std, channels_last)


def prepare_packed(
    layout: FaceLayout,
    pixels: np.ndarray,
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    channels_last: bool = False,
) -> Prepared:
    """``prepare_faces`` on frames already packed into ``pixels`` by ``layout``."""
    n = len(layout.face_frames)
    scale, bias = channel_affine(mean, std)
    batch = np.empty((n, size, size, 3) if channels_last else (n, 3, size, size), np.float32)
    stats = np.empty((n, STATS), np.float64)
    if n:
        _warp_normalise(pixels, layout.offsets, layout.shapes, layout.face_frames, layout.model_maps,
                        scale, bias, channels_last, batch)
        _components(pixels, layout.offsets, layout.shapes, layout.face_frames, layout.grey_maps, stats)
    sharpness, exposure = finish_components(stats)
    return Prepared(batch.transpose(0, 3, 1, 2) if channels_last else batch, sharpness, exposure)


@numba.njit(inline="always")
def _tap(pixels, base, width, y, x, channel):  # type: ignore[no-untyped-def]
    return np.float32(pixels[base + (y * width + x) * 3 + channel])


@numba.njit(inline="always")
def _bilinear(pixels, base, height, width, sx, sy, channel):  # type: ignore[no-untyped-def]
    # BORDER_REPLICATE: each of the four taps is clamped to the frame on its own.
    fx0, fy0 = np.floor(sx), np.floor(sy)
    fx, fy = np.float32(sx - fx0), np.float32(sy - fy0)
    x0, y0 = int(fx0), int(fy0)
    xa, xb = min(max(x0, 0), width - 1), min(max(x0 + 1, 0), width - 1)
    ya, yb = min(max(y0, 0), height - 1), min(max(y0 + 1, 0), height - 1)
    top = _tap(pixels, base, width, ya, xa, channel) * (np.float32(1) - fx) + _tap(
        pixels, base, width, ya, xb, channel) * fx
    bottom = _tap(pixels, base, width, yb, xa, channel) * (np.float32(1) - fx) + _tap(
        pixels, base, width, yb, xb, channel) * fx
    return top * (np.float32(1) - fy) + bottom * fy


@numba.njit(parallel=True, cache=True)
def _warp_normalise(pixels, offsets, shapes, face_frames, maps, scale, bias, channels_last, out):  # type: ignore[no-untyped-def]
    size = out.shape[2]
    for n in numba.prange(face_frames.shape[0]):
        frame = face_frames[n]
        base, height, width = offsets[frame], shapes[frame, 0], shapes[frame, 1]
        a, b, c, d, e, f = maps[n, 0], maps[n, 1], maps[n, 2], maps[n, 3], maps[n, 4], maps[n, 5]
        for y in range(size):
            for x in range(size):
                sx = a * np.float32(x) + b * np.float32(y) + c
                sy = d * np.float32(x) + e * np.float32(y) + f
                for channel in range(3):
                    # Output channel 0 is red: BGR frame channel 2.
                    value = _bilinear(pixels, base, height, width, sx, sy, 2 - channel) * scale[channel] + bias[channel]
                    if channels_last:
                        out[n, y, x, channel] = value
                    else:
                        out[n, channel, y, x] = value


@numba.njit(cache=True)
def _median9(grey, y, x):  # type: ignore[no-untyped-def]
    values = np.empty(9, np.int32)
    k = 0
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            values[k] = grey[y + dy, x + dx]
            k += 1
    values.sort()
    return np.float32(values[4])


@numba.njit(parallel=True, cache=True)
def _components(pixels, offsets, shapes, face_frames, maps, stats):  # type: ignore[no-untyped-def]
    for n in numba.prange(face_frames.shape[0]):
        frame = face_frames[n]
        base, height, width = offsets[frame], shapes[frame, 0], shapes[frame, 1]
        a, b, c, d, e, f = maps[n, 0], maps[n, 1], maps[n, 2], maps[n, 3], maps[n, 4], maps[n, 5]
        # The aligned face as cv2 gives it: each BGR channel rounded to uint8, then
        # OpenCV's fixed-point BGR→grey.
        grey = np.empty((GREY_SIZE, GREY_SIZE), np.int32)
        for y in range(GREY_SIZE):
            for x in range(GREY_SIZE):
                sx = a * np.float32(x) + b * np.float32(y) + c
                sy = d * np.float32(x) + e * np.float32(y) + f
                blue = int(np.floor(_bilinear(pixels, base, height, width, sx, sy, 0) + np.float32(0.5)))
                green = int(np.floor(_bilinear(pixels, base, height, width, sx, sy, 1) + np.float32(0.5)))
                red = int(np.floor(_bilinear(pixels, base, height, width, sx, sy, 2) + np.float32(0.5)))
                grey[y, x] = (blue * 1868 + green * 9617 + red * 4899 + 8192) >> 14
        # Median 3×3, then the two "blur the blur" ratios over the centre (the re-blur's
        # reach stays inside the 112×112 face, so no border rule is needed).
        smooth = np.zeros((GREY_SIZE, GREY_SIZE), np.float32)
        for y in range(_R0 - _HALF - 1, _R1 + _HALF + 1):
            for x in range(_C0 - _HALF - 1, _C1 + _HALF + 1):
                smooth[y, x] = _median9(grey, y, x)
        lost_x = detail_x = lost_y = detail_y = 0.0
        for y in range(_R0, _R1):
            for x in range(_C0, _C1):
                if x + 1 < _C1:
                    here = there = np.float32(0)
                    for k in range(-_HALF, _HALF + 1):
                        here += smooth[y, x + k]
                        there += smooth[y, x + 1 + k]
                    detail = abs(smooth[y, x + 1] - smooth[y, x])
                    kept = abs(there - here) / np.float32(REBLUR)
                    detail_x += detail
                    lost_x += max(detail - kept, np.float32(0))
                if y + 1 < _R1:
                    here = there = np.float32(0)
                    for k in range(-_HALF, _HALF + 1):
                        here += smooth[y + k, x]
                        there += smooth[y + 1 + k, x]
                    detail = abs(smooth[y + 1, x] - smooth[y, x])
                    kept = abs(there - here) / np.float32(REBLUR)
                    detail_y += detail
                    lost_y += max(detail - kept, np.float32(0))
        ratio = min(1.0, lost_x / max(detail_x, 1e-6), lost_y / max(detail_y, 1e-6))
        total = total_sq = clipped = 0.0
        for y in range(_R0, _R1):
            for x in range(_C0, _C1):
                value = grey[y, x]
                total += value
                total_sq += value * value
                if value <= 5 or value >= 250:
                    clipped += 1.0
        count = (_R1 - _R0) * (_C1 - _C0)
        mean = total / count
        stats[n, 0] = ratio
        stats[n, 1] = mean
        stats[n, 2] = np.sqrt(max(total_sq / count - mean * mean, 0.0))
        stats[n, 3] = clipped / count
