"""Decoding steps shared by file and live sources: which frames to analyse, which may
show garbage, how large a frame may be, hardware decoding, and which decoding work no
analysed frame needs (``Timeline``, ``live_frame_skip``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np
from av.codec.hwaccel import HWAccel

from fiqa_stream.stream.config import SourceConfig

# Truncation shows as fewer decoded frames than the container announces; a little slack
# for edit lists and trailing B-frames. ``run`` and ``index`` judge files by this rule.
MISSING_FRAMES_SLACK = 0.01


def missing_frames(decoded: int, expected: int | None) -> str | None:
    """What is wrong with a file that decoded clearly fewer frames than its container
    declares, or None when it gave them all (or declares no count)."""
    if expected and decoded < expected * (1 - MISSING_FRAMES_SLACK) - 1:
        return f"truncated or damaged: decoded {decoded} of {expected} frames"
    return None


def frame_too_large(width: int, height: int, limit: int) -> str | None:
    """What is wrong with a frame of more than ``limit`` pixels (``max_frame_pixels``), or
    None when it fits (or its size is not known yet: 0)."""
    if width * height > limit:
        return f"frame {width}×{height} is larger than the limit (max_frame_pixels {limit})"
    return None


#: Photos, which FFmpeg would open as one-frame videos or refuse with a bare "Invalid argument"
#: (not GIF: an animated one is a video).
STILL_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".heic"})


def still_image(path: Path) -> str | None:
    """Why ``path`` is not decoded as a video when its name says it is a photo, else None."""
    if path.suffix.lower() in STILL_IMAGE_SUFFIXES:
        return "a still image, not a video: score its faces with 'fiqa-stream score'"
    return None


def hardware_decoder(config: SourceConfig | None) -> HWAccel | None:
    """PyAV's hardware decoding settings for the source, or None for software decoding."""
    if config is None or config.hwaccel is None:
        return None
    return HWAccel(device_type=config.hwaccel, allow_software_fallback=True)


class DecodeDamage:
    """Which decoded frames may show garbage: every frame from one FFmpeg flags as corrupt
    (it concealed damage) or from a packet that failed to decode, until the next key frame
    that is not itself corrupt (later frames predict from the damaged one, so its damage
    spreads until a key frame resets it)."""

    def __init__(self) -> None:
        self._tainted = False

    def packet_failed(self) -> None:
        self._tainted = True

    def taints(self, frame: av.VideoFrame) -> bool:
        if frame.key_frame:
            self._tainted = False
        if frame.is_corrupt:
            self._tainted = True
        return self._tainted


class FrameSampler:
    """Decides which decoded frames are analysed: every Nth, or at most ``fps`` per media second."""

    def __init__(self, every: int, fps: float | None) -> None:
        self._every = every
        self._interval = 1.0 / fps if fps else None
        self._next_time: float | None = None

    def keep(self, index: int, pts: float | None) -> bool:
        if self._interval is None or pts is None:
            return index % self._every == 0
        if self._next_time is None or pts >= self._next_time - 1e-6:
            # Keep to the schedule so the average rate holds when frame times jitter;
            # after a gap of a whole interval or more, restart the schedule here.
            start = pts if self._next_time is None or pts - self._next_time >= self._interval else self._next_time
            self._next_time = start + self._interval
            return True
        return False


#: The decoder's ``skip_frame`` settings a source uses: decode every frame, leave out the
#: non-reference ones (no later frame needs them), all but key frames, or all.
FrameSkip = Literal["DEFAULT", "NONREF", "NONKEY", "ALL"]

#: Codecs whose every packet decodes to exactly one frame that carries the packet's pts,
#: so a file's packets tell the index of each frame without decoding it. Others (MPEG-4
#: part 2 with packed B-frames puts two frames in one packet, as Megamind.avi does) are
#: decoded whole and their frames counted.
TIMELINE_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mjpeg"})


@dataclass(frozen=True, slots=True)
class Timeline:
    """Every frame of a file's video stream in presentation order, read from its packets
    (demuxed, not decoded): frame ``i`` of a full decode has the pts ``pts[i]``.

    With it a file source may leave frames undecoded (``skip_frame``) and seek, and still
    give each frame the index and time a full decode gives it.

    Attributes:
        pts: (N,) int64, ascending: the pts (in ``time_base`` units) of every frame.
        keys: (K,) int64, ascending: the indexes of the key frames (where decoding may start).
        time_base: the stream's time base.
    """

    pts: np.ndarray
    keys: np.ndarray
    time_base: Fraction

    @classmethod
    def of(cls, packets: Iterable[tuple[int | None, bool]], time_base: Fraction) -> Timeline | None:
        """The timeline of ``(pts, is_keyframe)`` of every packet that holds a shown frame
        (not empty, not discarded), or None when one has no pts or two share one: then
        only counting decoded frames tells their index."""
        times: list[int] = []
        key_times: list[int] = []
        for pts, key in packets:
            if pts is None:
                return None
            times.append(pts)
            if key:
                key_times.append(pts)
        ordered = np.array(sorted(times), dtype=np.int64)
        if len(ordered) > 1 and not (np.diff(ordered) > 0).all():
            return None
        keys = np.searchsorted(ordered, np.array(sorted(key_times), dtype=np.int64))
        return cls(ordered, keys.astype(np.int64), time_base)

    def __len__(self) -> int:
        return len(self.pts)

    def index(self, pts: int | None) -> int | None:
        """The index of the frame with this pts; None when no packet had it."""
        if pts is None:
            return None
        position = int(np.searchsorted(self.pts, pts))
        return position if position < len(self.pts) and int(self.pts[position]) == pts else None

    def seconds(self, index: int) -> float:
        """Media time of frame ``index``, computed as PyAV computes ``VideoFrame.time``."""
        return float(self.pts[index]) * self.time_base.numerator / self.time_base.denominator

    def duration(self) -> float:
        """Media time from the first frame to the last, s."""
        return self.seconds(len(self.pts) - 1) - self.seconds(0) if len(self.pts) else 0.0

    def key_before(self, index: int) -> int:
        """The last key frame at or before frame ``index``; 0 when there is none."""
        position = int(np.searchsorted(self.keys, index, side="right")) - 1
        return int(self.keys[position]) if position >= 0 else 0

    def key_gap(self) -> float:
        """The longest time between two key frames, or from the last one to the end (s)."""
        if not len(self.keys):
            return float("inf")
        bounds = [*(self.seconds(int(k)) for k in self.keys), self.seconds(len(self.pts) - 1)]
        return max((b - a for a, b in zip(bounds, bounds[1:], strict=False)), default=0.0)

    def spread_keys(self, gap: float) -> np.ndarray:
        """As few key frames (indexes, ascending) as keep no two taken ones, nor the last
        one and the end, more than ``gap`` seconds apart; each key frame is taken where the
        key frames themselves lie further apart."""
        times = self.pts[self.keys].astype(np.float64) * self.time_base.numerator / self.time_base.denominator
        if not len(times):
            return self.keys
        taken = [0]
        while taken[-1] < len(times) - 1:
            # The furthest key frame within reach, or the next one when none is.
            reach = int(np.searchsorted(times, times[taken[-1]] + gap + 1e-9, side="right")) - 1
            taken.append(max(reach, taken[-1] + 1))
            if self.seconds(len(self.pts) - 1) - times[taken[-1]] <= gap:
                break
        return self.keys[taken]

    def kept(self, sampler: FrameSampler) -> np.ndarray:
        """(N,) bool: the frames ``sampler`` keeps of a full decode, asked in the same order."""
        return np.array([sampler.keep(i, self.seconds(i)) for i in range(len(self.pts))], dtype=bool)

    def ranges(self, spans: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
        """First and last frame index of each ``[start, end]`` span (media seconds) that holds a frame."""
        seconds = self.pts.astype(np.float64) * self.time_base.numerator / self.time_base.denominator
        found = []
        for start, end in spans:
            first = int(np.searchsorted(seconds, start - 1e-9))
            last = int(np.searchsorted(seconds, end + 1e-9, side="right")) - 1
            if first <= last:
                found.append((first, last))
        return found


def live_frame_skip(config: SourceConfig, rate: Fraction | None) -> FrameSkip:
    """``skip_frame`` of a live stream's decoder: ``NONREF`` when ``fps`` keeps at most half
    of the stream's frames, else ``DEFAULT``.

    Non-reference frames (B-frames, mostly) are never needed to decode a later frame, so
    leaving them undecoded loses nothing the sampler would not drop anyway: its time
    schedule takes the next frame that is decoded. ``every`` counts decoded frames, so it
    would thin twice; it decodes everything.
    """
    if config.fps is not None and rate is not None and rate > 0 and config.fps <= float(rate) / 2:
        return "NONREF"
    return "DEFAULT"


def describe_error(error: Exception) -> str:
    if isinstance(error, av.error.FFmpegError):
        return error.strerror or str(error)
    return str(error)
