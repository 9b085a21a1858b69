"""H.264 clips composed from real face photos, with a ground truth of each face's best moment.

Tests, benchmarks and the demo need video of faces whose best frame is known. The head
crops of :mod:`fiqa_stream.media.faces` are pasted onto a face-free moving background,
moved along their own horizontal lane and degraded smoothly in time: far from its best
moment a face is small, blurred and dark; at its best moment it is full size, sharp and
normally lit.

Only the paths the caller names are written; :func:`demo_clip` writes into a cache folder.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np

from fiqa_stream.media.faces import FaceCrop, face_crops

__all__ = [
    "ClipTruth",
    "FaceTruth",
    "compose_face_clip",
    "compose_nonface_clip",
    "corrupt_copy",
    "demo_clip",
    "flat_clip",
    "garbage_file",
]

logger = logging.getLogger(__name__)

_CROP_HEIGHT = 0.30  # head crop height at the best moment, as a fraction of the frame height
_WOBBLE = 0.01  # vertical sway amplitude, as a fraction of the frame height
_SPEED = 0.15  # horizontal travel per second, as a fraction of the frame width
_MIN_SCALE = 0.5
_MIN_GAIN = 0.35
_MAX_SIGMA_720P = 4.0
_TAU_S = 0.4  # degradation reaches 1 - 1/e this far from the best moment
_BEST_HALF_WIDTH_S = 0.12
_MIN_VISIBLE_S = 2.0
_DEMO_NAME = "demo-v1.mp4"


@dataclass(frozen=True)
class FaceTruth:
    """Where and when one composed face is visible, and when it is at its best.

    Attributes:
        face_id: Index of the face in the clip, ``0..K-1``.
        first_frame: First frame (0-based) where the face is visible.
        last_frame: Last frame where the face is visible (inclusive).
        best_frames: Inclusive frame window where the face is at its best (sharpest,
            brightest, largest), within a small tolerance of its exact best frame.
        centers: Frame index → face centre ``(x, y)`` in clip pixels, for every visible frame.
    """

    face_id: int
    first_frame: int
    last_frame: int
    best_frames: tuple[int, int]
    centers: dict[int, tuple[float, float]]


@dataclass(frozen=True)
class ClipTruth:
    """A composed clip on disk and its ground truth.

    Attributes:
        path: The MP4 file.
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frames per second; frame ``i`` has media time ``i / fps``.
        frame_count: Number of frames in the file.
        faces: One entry per composed face; empty for a clip without faces.
    """

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    faces: tuple[FaceTruth, ...]


@dataclass(frozen=True)
class _Plan:
    """How one face moves and degrades; times are in frames."""

    photo: FaceCrop
    first: int
    last: int
    best: int
    lane_y: float
    x_start: float
    x_step: float
    phase: float


def compose_face_clip(
    path: Path,
    *,
    width: int = 1280,
    height: int = 720,
    fps: float = 25.0,
    seconds: float = 6.0,
    faces: int = 3,
    seed: int = 0,
) -> ClipTruth:
    """Write an H.264 MP4 of real faces that move, shrink, blur and darken over time.

    Each face has its own time window (windows overlap, so several faces share the
    screen) and its own horizontal lane, so faces never overlap. Its best moment lies at
    a seeded random point in the middle 60 % of its window.

    Args:
        path: Output file; its parent folder must exist.
        width: Frame width in pixels (even).
        height: Frame height in pixels (even).
        fps: Frames per second.
        seconds: Clip length.
        faces: Number of faces, at least 1.
        seed: Seed for everything random; the same seed gives the same clip and truth.

    Returns:
        The clip's ground truth.

    Raises:
        ValueError: The size is odd or too small, or the faces do not fit in the clip
            with at least two seconds each.
        DependencyError: No face photo is available.
    """
    _check_size(width, height)
    if faces < 1:
        raise ValueError(f"faces must be at least 1, got {faces}")
    rng = np.random.default_rng(seed)
    frame_count = max(1, round(seconds * fps))
    photos = face_crops()
    order = rng.permutation(len(photos))
    plans = _plan_faces(
        [photos[order[i % len(photos)]] for i in range(faces)], width, height, fps, frame_count, rng
    )
    background = _Background(width, height, frame_count, rng)
    centers: list[dict[int, tuple[float, float]]] = [{} for _ in plans]

    def frames() -> Iterator[np.ndarray]:
        for index in range(frame_count):
            canvas = background.frame(index)
            for plan, face_centers in zip(plans, centers, strict=True):
                if plan.first <= index <= plan.last:
                    face_centers[index] = _paste(canvas, plan, index, fps)
            yield canvas

    _encode(path, frames(), width, height, fps)
    half = max(1, math.floor(_BEST_HALF_WIDTH_S * fps + 1e-9))
    truths = tuple(
        FaceTruth(
            face_id=i,
            first_frame=plan.first,
            last_frame=plan.last,
            best_frames=(max(plan.first, plan.best - half), min(plan.last, plan.best + half)),
            centers=face_centers,
        )
        for i, (plan, face_centers) in enumerate(zip(plans, centers, strict=True))
    )
    return ClipTruth(Path(path), width, height, float(fps), frame_count, truths)


def compose_nonface_clip(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: float = 25.0,
    seconds: float = 2.0,
    seed: int = 0,
) -> ClipTruth:
    """Write an H.264 MP4 of the moving face-free background alone.

    Args:
        path: Output file; its parent folder must exist.
        width: Frame width in pixels (even).
        height: Frame height in pixels (even).
        fps: Frames per second.
        seconds: Clip length.
        seed: Seed of the background texture and motion.

    Returns:
        The clip's ground truth, with no faces.

    Raises:
        ValueError: The size is odd or too small.
    """
    _check_size(width, height)
    frame_count = max(1, round(seconds * fps))
    background = _Background(width, height, frame_count, np.random.default_rng(seed))
    _encode(path, (background.frame(i) for i in range(frame_count)), width, height, fps)
    return ClipTruth(Path(path), width, height, float(fps), frame_count, ())


def demo_clip(cache_dir: Path | None = None) -> Path:
    """The demo clip, composed on the first call and reused afterwards.

    Args:
        cache_dir: Folder of the cached clip; default ``$FIQA_STREAM_CACHE`` or
            ``~/.cache/fiqa-stream``.

    Returns:
        Path of a complete 1280×720 clip with three faces. It is written to a temporary
        file and renamed into place, so an interrupted run never leaves half a clip.

    Raises:
        DependencyError: No face photo is available.
    """
    if cache_dir is None:
        default = Path.home() / ".cache" / "fiqa-stream"
        cache_dir = Path(os.environ.get("FIQA_STREAM_CACHE") or default)
    target = Path(cache_dir).expanduser() / _DEMO_NAME
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("composing the demo clip at %s", target)
    fd, temp_name = tempfile.mkstemp(prefix=f".{_DEMO_NAME}.", suffix=".part", dir=target.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        compose_face_clip(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def corrupt_copy(src: Path, dst: Path, *, keep_fraction: float = 0.5) -> Path:
    """Copy the first part of a file, as a download or recording cut short would leave it.

    Args:
        src: File to copy.
        dst: Where to write the truncated copy.
        keep_fraction: Share of the bytes to keep, in ``[0, 1]``.

    Returns:
        ``dst``.

    Raises:
        ValueError: ``keep_fraction`` is outside ``[0, 1]``.
    """
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be within [0, 1], got {keep_fraction}")
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


def garbage_file(dst: Path, *, size: int = 4096, seed: int = 0) -> Path:
    """Write random bytes, typically under a video file name.

    Args:
        dst: File to write, e.g. ``broken.mp4``.
        size: Number of bytes.
        seed: Seed of the bytes.

    Returns:
        ``dst``.
    """
    dst = Path(dst)
    dst.write_bytes(np.random.default_rng(seed).bytes(size))
    return dst


def flat_clip(dst: Path, sizes: Iterable[tuple[int, int]], *, grey: int = 128, fps: int = 1) -> Path:
    """Write flat grey frames of the given sizes as lossless PNG frames in a MOV: tiny on disk
    however large the frames (a 16000×16000 frame takes about 300 KB), as hostile or careless
    input may be. The stream declares the first frame's size; a later frame of another size
    is a size change mid-stream.

    Args:
        dst: MOV file to write.
        sizes: ``(width, height)`` of each frame, in order.
        grey: Grey level of every pixel.
        fps: Frame rate.

    Returns:
        ``dst``.
    """
    dst = Path(dst)
    with av.open(str(dst), "w", format="mov") as container:
        stream: av.VideoStream | None = None
        for index, (width, height) in enumerate(sizes):
            # One encoder per frame, so each PNG keeps its own size; the frame is filled in
            # place (no second copy of a frame that may be hundreds of MB).
            encoder = av.CodecContext.create("png", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "gray"
            encoder.time_base = Fraction(1, fps)
            if stream is None:
                stream = container.add_stream("png", rate=fps)
                stream.width, stream.height, stream.pix_fmt = width, height, "gray"
            frame = av.VideoFrame(width, height, "gray")
            np.frombuffer(memoryview(frame.planes[0]), np.uint8)[:] = grey
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in encoder.encode(frame) + encoder.encode(None):
                packet.stream = stream
                packet.pts = packet.dts = index
                packet.time_base = Fraction(1, fps)
                container.mux(packet)
            del frame
    return dst


def _check_size(width: int, height: int) -> None:
    # yuv420p needs even sizes; below this a face does not fit its lane.
    if width % 2 or height % 2 or width < 160 or height < 120:
        raise ValueError(f"clip size must be even and at least 160×120, got {width}×{height}")


def _plan_faces(
    photos: list[FaceCrop],
    width: int,
    height: int,
    fps: float,
    frame_count: int,
    rng: np.random.Generator,
) -> list[_Plan]:
    """Give each face a lane and a time window; faces sharing a lane never share a frame."""
    faces = len(photos)
    crop_h = _CROP_HEIGHT * height
    lanes = min(faces, max(1, int(height // (crop_h + 2 * _WOBBLE * height))))
    min_frames = min(frame_count, round(_MIN_VISIBLE_S * fps))
    length = max(min_frames, round(0.6 * frame_count)) if faces > 1 else frame_count
    if faces > lanes:
        length = min(length, lanes * frame_count // (faces - 1 + lanes))
    if length < min_frames:
        raise ValueError(
            f"{faces} faces do not fit in {frame_count} frames with at least "
            f"{_MIN_VISIBLE_S:g} s each; use a longer clip or fewer faces"
        )
    plans = []
    for i, photo in enumerate(photos):
        first = i * (frame_count - length) // max(1, faces - 1)
        last = first + length - 1
        best = first + round(rng.uniform(0.2, 0.8) * (length - 1))
        half_w = crop_h * photo.image.shape[1] / photo.image.shape[0] / 2
        span = width - 2 * half_w - 2
        travel = min(span, _SPEED * width * length / fps)
        x_min = half_w + 1 + rng.uniform(0, span - travel)
        direction = 1 if rng.random() < 0.5 else -1
        plans.append(
            _Plan(
                photo=photo,
                first=first,
                last=last,
                best=best,
                lane_y=(i % lanes + 0.5) * height / lanes,
                x_start=x_min if direction > 0 else x_min + travel,
                x_step=direction * travel / max(1, length - 1),
                phase=rng.uniform(0, 2 * math.pi),
            )
        )
    return plans


def _paste(canvas: np.ndarray, plan: _Plan, index: int, fps: float) -> tuple[float, float]:
    """Blend the face of ``plan`` at frame ``index`` into ``canvas``; return its centre."""
    height = canvas.shape[0]
    degradation = 1.0 - math.exp(-(((index - plan.best) / fps / _TAU_S) ** 2))
    scale = 1.0 - (1.0 - _MIN_SCALE) * degradation
    gain = 1.0 - (1.0 - _MIN_GAIN) * degradation
    sigma = _MAX_SIGMA_720P * height / 720 * degradation

    src_h, src_w = plan.photo.image.shape[:2]
    h = max(8, round(_CROP_HEIGHT * height * scale))
    w = max(8, round(h * src_w / src_h))
    interpolation = cv2.INTER_AREA if h < src_h else cv2.INTER_LINEAR
    # np.ndarray: OpenCV's stubs type GaussianBlur's result as integer or float.
    face: np.ndarray = cv2.resize(plan.photo.image, (w, h), interpolation=interpolation).astype(np.float32)
    if sigma > 0.05:
        face = cv2.GaussianBlur(face, (0, 0), sigma)
    face *= gain

    t = (index - plan.first) / fps
    cx = plan.x_start + plan.x_step * (index - plan.first)
    cy = plan.lane_y + _WOBBLE * height * math.sin(2 * math.pi * t / 2.5 + plan.phase)
    x0 = min(max(0, round(cx - w / 2)), canvas.shape[1] - w)
    y0 = min(max(0, round(cy - h / 2)), height - h)
    region = canvas[y0 : y0 + h, x0 : x0 + w]
    alpha = _ellipse_mask(h, w)
    region[:] = (region * (1.0 - alpha) + face * alpha + 0.5).astype(np.uint8)
    return (x0 + plan.photo.centre[0] * w, y0 + plan.photo.centre[1] * h)


@lru_cache(maxsize=256)
def _ellipse_mask(h: int, w: int) -> np.ndarray:
    """Soft elliptical alpha: opaque over the head, fading out before the crop's edge."""
    y = (np.arange(h, dtype=np.float32) + 0.5 - h / 2) / (h / 2)
    x = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (w / 2)
    radius = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)
    ramp = np.clip((0.95 - radius) / 0.3, 0.0, 1.0)
    alpha = ramp * ramp * (3.0 - 2.0 * ramp)
    alpha.setflags(write=False)
    return alpha[:, :, None]


class _Background:
    """A smooth gradient with low-contrast blurred-noise texture that drifts slowly.

    Blurred noise rather than a photo, so that nothing face-like can be in it.
    """

    def __init__(self, width: int, height: int, frame_count: int, rng: np.random.Generator) -> None:
        self._width, self._height = width, height
        self._margin = max(4, round(0.03 * width))
        big_w, big_h = width + 2 * self._margin, height + 2 * self._margin
        yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
        colors = rng.uniform(80, 180, size=(2, 3)).astype(np.float32)
        angle = rng.uniform(0, 2 * math.pi)
        ramp = (np.cos(angle) * xx / big_w + np.sin(angle) * yy / big_h + 1.0) / 2.0
        image = colors[0] + (colors[1] - colors[0]) * ramp[:, :, None]
        # Texture is blurred at 1/8 size and enlarged: a full-size blur this wide takes seconds.
        small = (max(8, big_w // 8), max(8, big_h // 8))
        for sigma, amplitude, channels in ((0.06, 12.0, 1), (0.015, 5.0, 1), (0.08, 4.0, 3)):
            noise: np.ndarray = rng.standard_normal((small[1], small[0], channels)).astype(np.float32)
            noise = cv2.GaussianBlur(noise, (0, 0), sigma * width / 8)
            noise = cv2.resize(noise, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
            noise = noise.reshape(big_h, big_w, channels)
            image += amplitude * noise / max(float(noise.std()), 1e-6)
        self._image = np.clip(image, 0, 255).astype(np.uint8)
        self._frame_count = max(1, frame_count - 1)
        self._phase = rng.uniform(0, 2 * math.pi)

    def frame(self, index: int) -> np.ndarray:
        """A new copy of the background at frame ``index``."""
        angle = self._phase + 2 * math.pi * index / self._frame_count
        dx = round(self._margin * (1 + math.cos(angle)))
        dy = round(self._margin * (1 + math.sin(angle)))
        return self._image[dy : dy + self._height, dx : dx + self._width].copy()


def _encode(path: Path, frames: Iterable[np.ndarray], width: int, height: int, fps: float) -> None:
    """Encode BGR frames as H.264 in an MP4 whose frame ``i`` has pts ``i / fps``."""
    rate = Fraction(fps).limit_denominator(1001)
    # faststart puts the index first, so a truncated copy still decodes its first frames.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.gop_size = max(1, round(fps))
        stream.options = {"crf": "20", "preset": "veryfast"}
        time_base = 1 / rate
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = index, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
