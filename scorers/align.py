"""Face alignment to the ArcFace 5-point template, and the loose crop of a face box.

Landmarks are (5, 2) ``[x, y]`` in frame pixels: image-left eye, image-right eye,
nose, image-left and image-right mouth corner. Boxes are ``[x1, y1, x2, y2]``.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Where the 5 landmarks land in the standard 112×112 ArcFace crop.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
TEMPLATE_SIZE = 112

# A detector box spans brow to chin, a little less than the template's framing
# (forehead to below the chin), so the fallback square is grown to match it.
_BOX_SCALE = 1.2


def similarity_from_landmarks(landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The least-squares similarity taking 5 landmarks to the ArcFace template.

    This is Umeyama's estimate without reflection: in 2-D a similarity
    ``[[a, -b, tx], [b, a, ty]]`` is linear in ``a, b``, so the optimum has a
    closed form over the centred points.

    Args:
        landmarks: (5, 2) points in frame pixels, or (N, 5, 2) for a batch.
        size: side of the aligned square; the template is scaled from 112.

    Returns:
        A 2×3 float32 matrix mapping frame pixels to aligned pixels, or (N, 2, 3).
    """
    src = np.asarray(landmarks, dtype=np.float64)
    if src.shape[-2:] != (5, 2):
        raise ValueError(f"landmarks must be (5, 2) or (N, 5, 2), got {src.shape}")
    dst = ARCFACE_TEMPLATE.astype(np.float64) * (size / TEMPLATE_SIZE)
    src_mean = src.mean(axis=-2, keepdims=True)
    dst_mean = dst.mean(axis=0)
    s = src - src_mean
    d = dst - dst_mean
    norm = np.maximum((s**2).sum(axis=(-2, -1)), 1e-12)
    a = (s[..., 0] * d[:, 0] + s[..., 1] * d[:, 1]).sum(axis=-1) / norm
    b = (s[..., 0] * d[:, 1] - s[..., 1] * d[:, 0]).sum(axis=-1) / norm
    mx, my = src_mean[..., 0, 0], src_mean[..., 0, 1]
    tx = dst_mean[0] - (a * mx - b * my)
    ty = dst_mean[1] - (b * mx + a * my)
    matrix = np.stack(
        [np.stack([a, -b, tx], axis=-1), np.stack([b, a, ty], axis=-1)], axis=-2
    )
    return matrix.astype(np.float32)


def turned(landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """``landmarks`` turned about their centroid by ``degrees`` (counter-clockwise as seen, y down)."""
    angle = np.radians(degrees)
    turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    points = np.asarray(landmarks, np.float64)
    centre = points.mean(axis=0)
    return ((points - centre) @ turn.T + centre).astype(np.float32)


def similarity_from_box(box: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The scale-and-shift taking a square around the box centre to the aligned square.

    Args:
        box: ``[x1, y1, x2, y2]`` in frame pixels.
        size: side of the aligned square.

    Returns:
        A 2×3 float32 matrix mapping frame pixels to aligned pixels.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * _BOX_SCALE
    scale = size / side
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return np.array(
        [[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]],
        dtype=np.float32,
    )


def align_face(
    image: np.ndarray, landmarks: np.ndarray | None, box: np.ndarray, size: int = TEMPLATE_SIZE
) -> np.ndarray:
    """The face warped to the ArcFace framing (from the box when there are no landmarks).

    Args:
        image: H×W×3 uint8 BGR frame.
        landmarks: (5, 2) landmarks in frame pixels, or None.
        box: ``[x1, y1, x2, y2]`` face box, used when ``landmarks`` is None.
        size: side of the aligned square.

    Returns:
        size×size×3 uint8 BGR face.
    """
    matrix = similarity_from_box(box, size) if landmarks is None else similarity_from_landmarks(landmarks, size)
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def loose_crop(image: np.ndarray, box: np.ndarray, margin: float, max_size: int) -> np.ndarray:
    """The box grown by ``margin`` of its size on every side, clipped to the frame.

    Args:
        image: H×W×3 uint8 frame.
        box: ``[x1, y1, x2, y2]`` face box in frame pixels.
        margin: added on each side as a fraction of the box width (left, right)
            and height (top, bottom).
        max_size: the longest side of the result; bigger crops are downscaled.

    Returns:
        A contiguous uint8 crop of at least 1×1 pixel.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left = min(max(int(np.floor(x1 - mx)), 0), w - 1)
    top = min(max(int(np.floor(y1 - my)), 0), h - 1)
    right = max(min(int(np.ceil(x2 + mx)), w), left + 1)
    bottom = max(min(int(np.ceil(y2 + my)), h), top + 1)
    crop = image[top:bottom, left:right]
    longest = max(crop.shape[0], crop.shape[1])
    if longest > max_size:
        scale = max_size / longest
        dsize = (max(round(crop.shape[1] * scale), 1), max(round(crop.shape[0] * scale), 1))
        return cv2.resize(crop, dsize, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)
