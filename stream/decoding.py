"""Decoding steps shared by file and live sources: which frames to analyse, which may
show garbage, how large a frame may be, and hardware decoding."""

from __future__ import annotations

import av
import av.error
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


def describe_error(error: Exception) -> str:
    if isinstance(error, av.error.FFmpegError):
        return error.strerror or str(error)
    return str(error)
