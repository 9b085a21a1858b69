"""Is a sighting whole: inside the frame, and free of decode garbage?

Damaged video shows garbage that no detector or quality model was trained to see:
rows or bands of one constant colour (FFmpeg's green, white or black bars) and rows
shifted against their neighbours. Both leave a straight horizontal edge that runs
across the face and on past it, which a face's own brow or eye line does not. Over the
face box's rows, widened by half its width on each side, the share of columns whose
luma jumps by more than 25 at one row boundary is measured; over the box itself, the
share of a row's pixels within 3 of its median colour. The crop is garbled when the
largest jump share reaches 0.42 or the largest constant share 0.75. Measured on Debian
opencv-doc's Megamind.avi (clean faces): at most 0.21 and 0.62; on Megamind_bugy.avi's
faces crossed by a bar or shifted rows: 0.51-1.00. Lost macroblocks are the third
sign: two or more 16×16 blocks of the frame's grid that break from all four neighbours
(Megamind.avi's clean faces: at most one). The fourth: rows that match the row above
better when moved sideways by 8-48 px than in place (a slice displaced by the decoder):
the best shifted match at most 0.65 of the in-place step, on faces from 48 px wide
(clean Megamind.avi faces: at least 0.85; real photos from 48 px: at least 0.91;
Megamind_bugy's displaced rows: 0.20-0.59). Faces narrower than 32 px are not judged.

A best shot hands over more than the box (a loose crop adds a margin on every side), so
a bar in that margin spoils it as well: over the rows the margin adds above and below
the box, the crop is garbled when the largest jump share reaches 0.75. There no face is
crossed, so only a bar across the whole slice counts: clean faces of Megamind.avi at
most 0.18 there, the bundled photos framed 32-160 px wide at most 0.53; the bars above or
below Megamind_bugy's faces that cross neither face 0.78-1.00 (frames 10, 65, 95, 100).
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_EDGE_SHARE = 0.42
MAX_MARGIN_EDGE_SHARE = 0.75
MAX_CONSTANT_SHARE = 0.75
MIN_GARBAGE_BLOCKS = 2
MAX_SHIFTED_MATCH = 0.65
_MIN_SHIFT = 8
_MAX_SHIFT = 48
_SHIFT_WIDTH = 64
# Below this width a face's own features, 8 px apart, can line up with the row above.
_MIN_SHIFT_SIDE = 48
_TEXTURED = 8.0
_BLOCK = 16
_BLOCK_STEP = 25
_JUMP = 25
_CONSTANT = 3
_MIN_SIDE = 32


def is_garbled(image: np.ndarray, box: np.ndarray, margin: float = 0.0) -> bool:
    """Whether the part of ``image`` inside ``box``, or a bar in the ``margin`` (a fraction
    of the box height) that a loose crop adds above and below it, shows decode garbage.
    Faces narrower than 32 px are not judged: their brow or eye line alone spans much of
    the slice."""
    height, width = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 - x1 < _MIN_SIDE or y2 - y1 < _MIN_SIDE:
        return False
    # Garbage runs across the slice, past the face; a face's own brow or eye line does not.
    reach, band = (x2 - x1) // 2, round((y2 - y1) * margin)
    top, bottom = max(0, y1 - band), min(height, y2 + band)
    slice_luma = cv2.cvtColor(image[top:bottom, max(0, x1 - reach) : min(width, x2 + reach)], cv2.COLOR_BGR2GRAY)
    edge_shares = (np.abs(np.diff(slice_luma.astype(np.int16), axis=0)) > _JUMP).mean(axis=1)
    if edge_shares[y1 - top : y2 - top - 1].max() >= MAX_EDGE_SHARE:
        return True
    if edge_shares.max() >= MAX_MARGIN_EDGE_SHARE:
        return True
    if _garbage_blocks(image, box) >= MIN_GARBAGE_BLOCKS:
        return True
    if x2 - x1 >= _MIN_SHIFT_SIDE and _shifted_rows(image, x1, y1, x2, y2) <= MAX_SHIFTED_MATCH:
        return True
    colours = image[y1:y2, x1:x2].astype(np.int16)
    median = np.median(colours, axis=1, keepdims=True)
    constant_share = (np.abs(colours - median).max(axis=2) <= _CONSTANT).mean(axis=1).max()
    return bool(constant_share >= MAX_CONSTANT_SHARE)


def _garbage_blocks(image: np.ndarray, box: np.ndarray) -> int:
    """How many 16×16 blocks of the frame's macroblock grid inside ``box`` break from all
    four neighbours: the minimum over their four edges of the mean luma step across the
    edge exceeds 25. A decoder that lost a block fills it with noise, one colour or a
    block from elsewhere; natural content crosses a block edge smoothly on at least one side."""
    height, width = image.shape[:2]
    x1 = max(_BLOCK, int(box[0]) // _BLOCK * _BLOCK)
    y1 = max(_BLOCK, int(box[1]) // _BLOCK * _BLOCK)
    x2 = min(width - _BLOCK, int(np.ceil(box[2])))
    y2 = min(height - _BLOCK, int(np.ceil(box[3])))
    if x2 - x1 < _BLOCK or y2 - y1 < _BLOCK:
        return 0
    luma = cv2.cvtColor(image[y1 - 1 : y2 + 1, x1 - 1 : x2 + 1], cv2.COLOR_BGR2GRAY).astype(np.int16)
    rows, columns = (y2 - y1) // _BLOCK, (x2 - x1) // _BLOCK
    span_y, span_x, b = rows * _BLOCK, columns * _BLOCK, _BLOCK
    inner = luma[1 : 1 + span_y, 1 : 1 + span_x]
    above = np.abs(inner[0::b] - luma[0:span_y:b, 1 : 1 + span_x])
    below = np.abs(inner[b - 1 :: b] - luma[1 + b : 2 + span_y : b, 1 : 1 + span_x])
    left = np.abs(inner[:, 0::b] - luma[1 : 1 + span_y, 0:span_x:b])
    right = np.abs(inner[:, b - 1 :: b] - luma[1 : 1 + span_y, 1 + b : 2 + span_x : b])
    per_block = np.stack([
        above.reshape(rows, columns, _BLOCK).mean(axis=2), below.reshape(rows, columns, _BLOCK).mean(axis=2),
        left.reshape(rows, _BLOCK, columns).mean(axis=1), right.reshape(rows, _BLOCK, columns).mean(axis=1),
    ])
    return int((per_block.min(axis=0) > _BLOCK_STEP).sum())


def _shifted_rows(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> float:
    """How much better the face box's rows match the row above when moved sideways by
    8-48 px than in place, at the best row boundary: the ratio of the two mean luma steps
    (1 when no textured row matches better shifted). A decoder that lost a slice can show
    its rows moved sideways against the rest; a picture's rows continue in place.
    Computed on the box's rows scaled to 64 px wide."""
    height, width = image.shape[:2]
    left, right = max(0, x1 - _MAX_SHIFT), min(width, x2 + _MAX_SHIFT)
    scale = min(1.0, _SHIFT_WIDTH / (x2 - x1))
    slab = cv2.cvtColor(image[y1:y2, left:right], cv2.COLOR_BGR2GRAY)
    slab = cv2.resize(slab, (max(1, round((right - left) * scale)), y2 - y1), interpolation=cv2.INTER_AREA)
    slab = slab.astype(np.float32)
    reach, least = int(np.ceil(_MAX_SHIFT * scale)), max(2, round(_MIN_SHIFT * scale))
    lo = max(reach, round((x1 - left) * scale))
    hi = min(slab.shape[1] - reach, round((x2 - left) * scale))
    if hi - lo < _MIN_SIDE // 2 or slab.shape[0] < 2:
        return 1.0
    above, below = slab[:-1, lo:hi], slab[1:]
    in_place = np.abs(below[:, lo:hi] - above).mean(axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(below, hi - lo, axis=1)
    shifts = [s for s in range(-reach, reach + 1) if abs(s) >= least]
    moved = np.abs(windows[:, [lo + s for s in shifts], :] - above[:, None, :]).mean(axis=2).min(axis=1)
    textured = in_place > _TEXTURED
    if not textured.any():
        return 1.0
    return float((moved[textured] / in_place[textured]).min())


def is_cut_off(box: np.ndarray, width: int, height: int) -> bool:
    """Whether the box reaches past the frame's edge (part of the face is not in the picture)."""
    return bool(box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height)
