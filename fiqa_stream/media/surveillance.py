"""A surveillance recording: a fixed camera's view that people now and then walk through.

Archives are long and mostly empty of faces. :func:`compose_surveillance_clip` writes
such a recording with a known truth: the face of each visit walks along its own path
at its own time (composed, moved and degraded as in :mod:`fiqa_stream.media.clips`, with
a body below it), faceless passers-by (people seen from behind) cross at other times,
and the sensor adds noise to every frame, so that nothing in the picture is ever quite
still.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from fiqa_stream.media.clips import (
    _BEST_HALF_WIDTH_S,
    _CROP_HEIGHT,
    _SPEED,
    ClipTruth,
    FaceTruth,
    _Background,
    _check_size,
    _encode,
    _paste,
    _Plan,
)
from fiqa_stream.media.faces import FaceCrop, face_crops

__all__ = ["compose_surveillance_clip", "spread_visits"]

_NOISE_FRAMES = 8  # sensor noise comes from a small bank: fresh noise for every 720p frame takes too long
_NOISE_SIGMA = 2.0
_BODY = (60, 60, 70)  # dark clothes, BGR


def spread_visits(seconds: float, count: int, length: float, seed: int = 0) -> list[tuple[float, float]]:
    """``count`` visits of ``length`` seconds each at seeded random times, one at a time,
    none in the first or last 2 seconds: ``(start, length)`` pairs in time order."""
    if count * (length + 1.0) > seconds - 4.0:
        raise ValueError(f"{count} visits of {length:g} s do not fit one at a time in {seconds:g} s")
    rng = np.random.default_rng(seed)
    slack = seconds - 4.0 - count * (length + 1.0)
    cuts = np.sort(rng.uniform(0.0, slack, count))
    return [(2.0 + float(cut) + n * (length + 1.0), length) for n, cut in enumerate(cuts)]


def compose_surveillance_clip(
    path: Path,
    *,
    width: int = 1280,
    height: int = 720,
    fps: float = 25.0,
    seconds: float = 600.0,
    visits: Sequence[tuple[float, float]],
    passers: Sequence[tuple[float, float]] = (),
    seed: int = 0,
) -> ClipTruth:
    """Write an H.264 MP4 of a fixed camera's view with faces only during ``visits``.

    Args:
        path: Output file; its parent folder must exist.
        width: Frame width in pixels (even).
        height: Frame height in pixels (even).
        fps: Frames per second.
        seconds: Clip length.
        visits: ``(start, length)`` in seconds of each person whose face is seen, one face
            per visit; each walks across part of the picture and is at its best at a
            seeded point in the middle 60 % of its visit.
        passers: ``(start, length)`` in seconds of each faceless passer-by.
        seed: Seed for everything random.

    Returns:
        The clip's ground truth: one face per visit, in visit order.

    Raises:
        ValueError: The size is odd or too small, or a visit lies outside the clip or is
            shorter than a second.
    """
    _check_size(width, height)
    rng = np.random.default_rng(seed)
    frame_count = max(1, round(seconds * fps))
    photos = face_crops()
    plans = []
    for number, (start, length) in enumerate(visits):
        first, last = round(start * fps), round((start + length) * fps) - 1
        if length < 1.0 or first < 0 or last >= frame_count:
            raise ValueError(f"visit {number} ({start:g} s for {length:g} s) must last a second or more "
                             f"within the {seconds:g} s clip")
        plans.append(_walk(photos[int(rng.integers(len(photos)))], first, last, width, height, fps, rng))
    walkers = [(round(start * fps), round((start + length) * fps) - 1, rng.uniform(0.35, 0.75) * height,
                1 if rng.random() < 0.5 else -1) for start, length in passers]
    background = _Background(width, height, frame_count, rng)
    noise = [rng.normal(0.0, _NOISE_SIGMA, (height, width, 1)).astype(np.float32) for _ in range(_NOISE_FRAMES)]
    lifts = [np.clip(n, 0, 255).astype(np.uint8).repeat(3, axis=2) for n in noise]
    drops = [np.clip(-n, 0, 255).astype(np.uint8).repeat(3, axis=2) for n in noise]
    centers: list[dict[int, tuple[float, float]]] = [{} for _ in plans]

    def frames() -> Iterator[np.ndarray]:
        for index in range(frame_count):
            canvas = background.frame(index)
            for first, last, y, direction in walkers:
                if first <= index <= last:
                    progress = (index - first) / max(1, last - first)
                    x = (progress if direction > 0 else 1 - progress) * 1.2 * width - 0.1 * width
                    _passer(canvas, x, y, height)
            for plan, face_centers in zip(plans, centers, strict=True):
                if plan.first <= index <= plan.last:
                    x = plan.x_start + plan.x_step * (index - plan.first)
                    _body(canvas, x, plan.lane_y, _CROP_HEIGHT * height)
                    face_centers[index] = _paste(canvas, plan, index, fps)
            pick = int(rng.integers(_NOISE_FRAMES))
            cv2.add(canvas, lifts[pick], dst=canvas)
            cv2.subtract(canvas, drops[pick], dst=canvas)
            yield canvas

    _encode(path, frames(), width, height, fps)
    half = max(1, math.floor(_BEST_HALF_WIDTH_S * fps + 1e-9))
    truths = tuple(
        FaceTruth(face_id=n, first_frame=plan.first, last_frame=plan.last,
                  best_frames=(max(plan.first, plan.best - half), min(plan.last, plan.best + half)),
                  centers=face_centers)
        for n, (plan, face_centers) in enumerate(zip(plans, centers, strict=True))
    )
    return ClipTruth(Path(path), width, height, float(fps), frame_count, truths)


def _walk(photo: FaceCrop, first: int, last: int, width: int, height: int, fps: float,
          rng: np.random.Generator) -> _Plan:
    """One face's path: a horizontal walk at the usual speed, somewhere in the upper half."""
    length = last - first + 1
    crop_h = _CROP_HEIGHT * height
    half_w = crop_h * photo.image.shape[1] / photo.image.shape[0] / 2
    span = width - 2 * half_w - 2
    travel = min(span, _SPEED * width * length / fps)
    x_min = half_w + 1 + rng.uniform(0, span - travel)
    direction = 1 if rng.random() < 0.5 else -1
    return _Plan(photo=photo, first=first, last=last, best=first + round(rng.uniform(0.2, 0.8) * (length - 1)),
                 lane_y=rng.uniform(0.3, 0.45) * height, x_start=x_min if direction > 0 else x_min + travel,
                 x_step=direction * travel / max(1, length - 1), phase=rng.uniform(0, 2 * math.pi))


def _body(canvas: np.ndarray, x: float, head_y: float, size: float) -> None:
    """A dark torso below a head ``size`` pixels tall at ``(x, head_y)``."""
    center = (round(x), round(head_y + 0.85 * size))
    cv2.ellipse(canvas, center, (round(0.4 * size), round(0.5 * size)), 0, 0, 360, _BODY, -1, cv2.LINE_AA)


def _passer(canvas: np.ndarray, x: float, y: float, height: int) -> None:
    """Someone seen from behind: a dark head (hair) on a torso, no face."""
    size = 0.8 * _CROP_HEIGHT * height
    cv2.ellipse(canvas, (round(x), round(y)), (round(0.3 * size), round(0.38 * size)), 0, 0, 360, (30, 30, 35), -1,
                cv2.LINE_AA)
    _body(canvas, x, y - 0.1 * size, size)
