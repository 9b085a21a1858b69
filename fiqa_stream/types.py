"""The data contracts shared by every stage: frames, detections, quality, best shots.

Images are H×W×3 ``uint8`` arrays in **BGR** channel order (OpenCV's and FFmpeg's
``bgr24``) everywhere in the project.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np


class FullResolution:
    """The main-stream frame a dual-stream camera's detect frame is paired with.

    It stays in the decoder's own format until ``image()`` is first called: converting a
    full-resolution frame to BGR costs about as much as decoding it, and only the frames
    a best shot is cut from are ever needed.

    Attributes:
        width: width in pixels.
        height: height in pixels.
        skew: its capture time minus the detect frame's, in seconds.
    """

    __slots__ = ("width", "height", "skew", "_convert", "_image")

    def __init__(self, width: int, height: int, convert: Callable[[], np.ndarray], skew: float = 0.0) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"FullResolution needs a positive size, got {width}×{height}")
        self.width = width
        self.height = height
        self.skew = skew
        self._convert: Callable[[], np.ndarray] | None = convert
        self._image: np.ndarray | None = None

    def image(self) -> np.ndarray:
        """The frame as H×W×3 uint8 BGR, converted on the first call."""
        if self._image is None:
            if self._convert is None:
                raise ValueError("FullResolution lost its frame before converting it")
            image = self._convert()
            if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
                raise ValueError(
                    f"FullResolution of {self.width}×{self.height} converted to shape {image.shape} dtype {image.dtype}"
                )
            self._image = image
            # The decoded frame goes now: the BGR copy is all that is needed from here on.
            self._convert = None
        return self._image


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of one source.

    Attributes:
        source: id of the source the frame came from.
        index: position among the source's decoded frames, counted from 0 (sampling
            skips indexes, it does not renumber them).
        pts: presentation time in media seconds, or None when the stream has none.
        captured_at: wall-clock capture time (UTC) for live sources, else None.
        image: H×W×3 uint8 BGR image.
        corrupt: the decoder flagged the frame as corrupt, or it depends on a packet
            that failed to decode (until the next key frame): never a best shot. For a
            dual-stream camera: either of its two frames.
        full: for a dual-stream camera, the main-stream frame nearest in capture time to
            this one (of the camera's detect stream); best shots are cut from it.
    """

    source: str
    index: int
    pts: float | None
    captured_at: datetime | None
    image: np.ndarray
    corrupt: bool = False
    full: FullResolution | None = None

    def __post_init__(self) -> None:
        image = self.image
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"Frame.image must be H×W×3 uint8, got shape {image.shape} dtype {image.dtype}"
            )

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def scale(self) -> tuple[float, float]:
        """Horizontal and vertical factors from this frame's pixels to ``full``'s; (1, 1)
        without one. They differ where a camera's sub-stream has another aspect ratio
        (704×576 beside 2560×1440) but the same field of view."""
        if self.full is None:
            return 1.0, 1.0
        return self.full.width / self.width, self.full.height / self.height


@dataclass(frozen=True, slots=True)
class Detections:
    """The faces found in one image.

    Attributes:
        boxes: (N, 4) float32, [x1, y1, x2, y2] in image pixels.
        scores: (N,) float32 detector confidence in [0, 1].
        landmarks: (N, 5, 2) float32 [x, y] of the subject's right eye, left eye, nose,
            right and left mouth corner (image-left first), or None when the detector
            gives no landmarks.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.boxes.shape[0] if self.boxes.ndim == 2 else -1
        if self.boxes.shape != (n, 4) or self.boxes.dtype != np.float32:
            raise ValueError(f"boxes must be (N, 4) float32, got {self.boxes.shape} {self.boxes.dtype}")
        if self.scores.shape != (n,) or self.scores.dtype != np.float32:
            raise ValueError(f"scores must be ({n},) float32, got {self.scores.shape} {self.scores.dtype}")
        if self.landmarks is not None and (
            self.landmarks.shape != (n, 5, 2) or self.landmarks.dtype != np.float32
        ):
            raise ValueError(
                f"landmarks must be ({n}, 5, 2) float32 or None, got {self.landmarks.shape}"
            )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, with_landmarks: bool = True) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32) if with_landmarks else None,
        )

    def take(self, keep: np.ndarray) -> Detections:
        """The detections selected by a boolean mask or an index array."""
        return Detections(
            boxes=self.boxes[keep],
            scores=self.scores[keep],
            landmarks=None if self.landmarks is None else self.landmarks[keep],
        )

    def scaled(self, factor: float) -> Detections:
        """Coordinates multiplied by ``factor`` (maps a downscaled image back)."""
        return Detections(
            boxes=(self.boxes * factor).astype(np.float32),
            scores=self.scores,
            landmarks=None if self.landmarks is None else (self.landmarks * factor).astype(np.float32),
        )


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face in its frame: what a scorer needs to judge it."""

    image: np.ndarray
    box: np.ndarray
    confidence: float
    landmarks: np.ndarray | None


@dataclass(frozen=True, slots=True)
class Quality:
    """A fused quality score in [0, 1] and the named components it was made from."""

    score: float
    components: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"quality score must lie in [0, 1], got {self.score}")


class TrackState(StrEnum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    ENDED = "ended"


class EventKind(StrEnum):
    FINAL = "final"
    UPDATE = "update"


SCHEMA_VERSION = 2


@dataclass(frozen=True, slots=True)
class BestShot:
    """The best sighting of one tracked face, as handed to every sink.

    Field names are those of the documented event schema (docs/EVENTS.md).
    ``run_id`` names one run of one source (docs/EVENTS.md); it is part of ``event_id``.
    ``crop_jpeg`` holds the encoded face crop, ``frame_jpeg`` the whole best frame when
    a sink asked for frames; each sink stores them its own way. ``decided_at`` is the
    wall-clock (UTC) moment the selector made the event.
    """

    event_id: str
    run_id: str
    kind: EventKind
    source: str
    track_id: int
    frame_index: int
    pts: float | None
    captured_at: datetime | None
    first_seen: float | None
    last_seen: float | None
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...] | None
    quality: float
    components: Mapping[str, float]
    model: str
    crop_jpeg: bytes
    sightings: int
    decided_at: datetime
    frame_jpeg: bytes | None = None
    first_frame_index: int | None = None
    first_box: tuple[float, float, float, float] | None = None
    schema: int = SCHEMA_VERSION
