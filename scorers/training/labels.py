"""The full-reference quality label of a degraded face crop, calibrated to [0, 1].

A degraded crop is compared with its pristine crop by MS-SSIM (Wang, Simoncelli and
Bovik, 2003), a weight-free measure validated against human judgements, computed on
luma over the face region of the ArcFace-aligned crop (rows 10-100 %, columns
12.5-87.5 %: forehead to chin, ear to ear, little background):

    s = l_M^w_M · Π_{j=1..M} c s_j^w_j,        M = 5 scales, w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

with the usual constants C1 = (0.01·255)², C2 = (0.03·255)², Gaussian windows of
σ = 1.5 px (borders reflected, so small scales stay defined), 2×2 averaging between
scales and negative contrast-structure terms clipped to 0. Luminance enters at the
coarsest scale, contrast and structure at every scale, so blur, noise, compression,
exposure, contrast loss and occlusion all lower ``s``.

MS-SSIM crowds realistic degradations into [0.6, 1]; the label spreads that range by
the monotonic map

    label = exp(−(1 − s) / τ),        τ = 0.15,

so the pristine crop scores 1, s = 0.9 scores 0.51, s = 0.8 scores 0.26 and s = 0.6
scores 0.07; ranks (and so SRCC) are those of MS-SSIM itself.
"""

from __future__ import annotations

import cv2
import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
TAU = 0.15
#: The face region of an aligned crop, as fractions of its side: (top, bottom, left, right).
FACE_REGION = (0.10, 1.0, 0.125, 0.875)
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_SIGMA = 1.5


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of a BGR uint8 image as float64 on [0, 255]."""
    b, g, r = (image[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def face_region(image: np.ndarray) -> np.ndarray:
    """The face part of an aligned crop (see ``FACE_REGION``)."""
    h, w = image.shape[:2]
    top, bottom, left, right = FACE_REGION
    return image[round(top * h) : round(bottom * h), round(left * w) : round(right * w)]


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), _SIGMA, borderType=cv2.BORDER_REFLECT)


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean luminance term and mean (clipped) contrast-structure term of SSIM."""
    mx, my = _blur(x), _blur(y)
    vx = _blur(x * x) - mx * mx
    vy = _blur(y * y) - my * my
    cov = _blur(x * y) - mx * my
    lum = (2 * mx * my + _C1) / (mx * mx + my * my + _C1)
    cs = (2 * cov + _C2) / (vx + vy + _C2)
    return float(lum.mean()), max(float(cs.mean()), 0.0)


def _halve(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    return x[:h:2, :w:2] / 4 + x[1:h:2, :w:2] / 4 + x[:h:2, 1:w:2] / 4 + x[1:h:2, 1:w:2] / 4


def ms_ssim(reference: np.ndarray, degraded: np.ndarray) -> float:
    """MS-SSIM of two equally sized greyscale float images on [0, 255], in [0, 1].

    Raises:
        ValueError: the images differ in shape or are smaller than 32 px.
    """
    if reference.shape != degraded.shape or min(reference.shape) < 32:
        raise ValueError(f"need two equal images of at least 32×32, got {reference.shape} and {degraded.shape}")
    x, y = reference, degraded
    score = 1.0
    for j, weight in enumerate(MS_SSIM_WEIGHTS):
        lum, cs = _ssim_terms(x, y)
        last = j == len(MS_SSIM_WEIGHTS) - 1
        score *= (max(lum, 0.0) * cs if last else cs) ** weight
        if not last:
            x, y = _halve(x), _halve(y)
    return float(min(score, 1.0))


def calibrate(similarity: float) -> float:
    """MS-SSIM ``s`` to the label ``exp(−(1 − s)/τ)`` in (0, 1]."""
    return float(np.exp(-(1.0 - min(max(similarity, 0.0), 1.0)) / TAU))


def quality_label(pristine: np.ndarray, degraded: np.ndarray) -> float:
    """The label of ``degraded`` against ``pristine``: calibrated MS-SSIM over the face region.

    Args:
        pristine: the aligned BGR uint8 crop before degradation.
        degraded: the same crop after degradation, same size.

    Returns:
        A score in (0, 1]; 1 for an unchanged crop.
    """
    return calibrate(ms_ssim(luma(face_region(pristine)), luma(face_region(degraded))))
