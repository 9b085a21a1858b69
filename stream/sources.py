"""Video file sources: expansion of paths, globs and folders, and threaded decoding.

Each source decodes in its own thread (FFmpeg releases the GIL while decoding) into a
bounded ``FrameBuffer``. A source always finishes with one ``SourceEnd`` marker, sent
in ``finally``, carrying the error that stopped it, if any.
"""

from __future__ import annotations

import glob
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import av
import av.error
from av.codec.hwaccel import HWAccel, hwdevices_available

from fiqa_stream.errors import SourceError
from fiqa_stream.redact import redact_url
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import DEFAULT_MAX_FRAME_PIXELS, SourceConfig
from fiqa_stream.types import Frame

log = logging.getLogger(__name__)

# Demuxers a video file may be read with. Playlists and scripts (hls, concat, ...) can
# make FFmpeg open other files, so a file that probes as anything else is refused.
ALLOWED_FORMATS = (
    "mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi", "mpegts", "mpeg", "mpegvideo", "flv", "asf",
    "h264", "hevc", "m4v", "mjpeg", "ivf", "yuv4mpegpipe",
)
FILE_OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_FORMATS)}

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".flv", ".wmv", ".h264", ".h265"}
)
DEMO_URL = "demo:"
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp"})
DEVICE_PREFIX = "device:"
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


def is_live(url: str) -> bool:
    """Streams and capture devices, as opposed to files, globs and folders."""
    return url.startswith(DEVICE_PREFIX) or urlsplit(url).scheme.lower() in LIVE_SCHEMES


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One concrete video or stream to decode, after globs and folders are expanded."""

    id: str
    path: Path
    every: int
    fps: float | None
    queue_size: int
    config: SourceConfig | None = None
    live: bool = False


@dataclass(frozen=True, slots=True)
class SourceEnd:
    """End marker of one source; ``error`` is set when the source failed."""

    source: str
    error: SourceError | None = None


def _is_glob(url: str) -> bool:
    return any(char in url for char in "*?[")


def _paths_of(config: SourceConfig) -> list[Path]:
    url = config.url
    if url == DEMO_URL:
        from fiqa_stream.media.clips import demo_clip

        return [demo_clip()]
    if _is_glob(url):
        matches = sorted(Path(p) for p in glob.glob(url, recursive=True) if Path(p).is_file())
        if not matches:
            raise SourceError(f"source '{url}': no file matches this pattern")
        return matches
    path = Path(url).expanduser()
    if path.is_dir():
        videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise SourceError(
                f"source '{url}': folder holds no video files (looked for {', '.join(sorted(VIDEO_SUFFIXES))})"
            )
        return videos
    if not path.exists():
        raise SourceError(f"source '{url}': file not found")
    return [path]


def missing_files(configs: list[SourceConfig]) -> list[str]:
    """What ``check`` warns about: one line per configured file that does not exist and
    pattern that matches no file now, e.g. ``sources[0].url: no such file: a.mp4``.
    Live sources, devices, folders and 'demo:' are not looked into."""
    lines = []
    for index, config in enumerate(configs):
        url = config.url
        if url == DEMO_URL or is_live(url):
            continue
        if _is_glob(url):
            if not any(Path(p).is_file() for p in glob.iglob(url, recursive=True)):
                lines.append(f"sources[{index}].url: no file matches: {url}")
        elif not Path(url).expanduser().exists():
            lines.append(f"sources[{index}].url: no such file: {url}")
    return lines


def hardware_decoder(config: SourceConfig | None) -> HWAccel | None:
    """PyAV's hardware decoding settings for the source, or None for software decoding."""
    if config is None or config.hwaccel is None:
        return None
    return HWAccel(device_type=config.hwaccel, allow_software_fallback=True)


def _hwaccel_error(config: SourceConfig) -> SourceError | None:
    # PyAV silently decodes in software when FFmpeg lacks the device type; say so instead.
    available = hwdevices_available()
    if config.hwaccel is None or config.hwaccel in available:
        return None
    return SourceError(
        f"{redact_url(config.url)}: hwaccel: '{config.hwaccel}' is not supported by this FFmpeg build "
        f"(it has: {', '.join(available) or 'none'})"
    )


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "source"


def expand_sources(configs: list[SourceConfig]) -> tuple[list[SourceSpec], list[SourceError]]:
    """Turn configured sources into concrete videos with unique ids.

    A source that expands to nothing is reported in the second list; the others go on.
    """
    specs: list[SourceSpec] = []
    errors: list[SourceError] = []
    taken: set[str] = set()
    for config in configs:
        hwaccel_error = _hwaccel_error(config)
        if hwaccel_error is not None:
            errors.append(hwaccel_error)
            continue
        if is_live(config.url):
            parts = urlsplit(config.url)
            base = config.id or _safe_id(f"{parts.hostname or ''}{parts.path}" or config.url)
            source_id, n = base, 1
            while source_id in taken:
                n += 1
                source_id = f"{base}-{n}"
            taken.add(source_id)
            specs.append(SourceSpec(source_id, Path(parts.path or "."), config.every, config.fps,
                                    config.live_queue_size, config, live=True))
            continue
        try:
            paths = _paths_of(config)
        except SourceError as error:
            errors.append(error)
            continue
        for path in paths:
            base = config.id if config.id and len(paths) == 1 else _safe_id(path.stem)
            if config.id and len(paths) > 1:
                base = f"{config.id}-{_safe_id(path.stem)}"
            source_id, n = base, 1
            while source_id in taken:
                n += 1
                source_id = f"{base}-{n}"
            taken.add(source_id)
            specs.append(SourceSpec(source_id, path, config.every, config.fps, config.queue_size, config))
    return specs, errors


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
            on_schedule = self._next_time is not None and pts - self._next_time < self._interval
            self._next_time = (self._next_time if on_schedule else pts) + self._interval
            return True
        return False


def _describe(error: Exception) -> str:
    if isinstance(error, av.error.FFmpegError):
        return error.strerror or str(error)
    return str(error)


class FileSource:
    """Decodes one video file in a thread into a bounded buffer, losing no frame."""

    def __init__(self, spec: SourceSpec, buffer: FrameBuffer[Frame | SourceEnd], stop: threading.Event) -> None:
        self.spec = spec
        self.buffer = buffer
        self.decoded = 0
        self.bad_packets = 0
        self.expected_frames: int | None = None
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name=f"decode-{spec.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _error(self, what: str, error: Exception | None = None) -> SourceError:
        detail = f": {_describe(error)}" if error else ""
        return SourceError(f"source '{self.spec.id}' ({self.spec.path}): {what}{detail}")

    def _run(self) -> None:
        failure: SourceError | None = None
        try:
            for frame in self._frames():
                if not self.buffer.put(frame, self._stop):
                    break
        except SourceError as error:
            failure = error
        except Exception as error:  # noqa: BLE001 - any decoder failure ends this source only
            failure = self._error("decoding failed", error)
        finally:
            self.buffer.put(SourceEnd(self.spec.id, failure), self._stop, force=True)

    def _frames(self) -> Iterator[Frame]:
        name = self.spec.config.hwaccel if self.spec.config else None
        try:
            container = av.open(str(self.spec.path), options=FILE_OPEN_OPTIONS,
                                hwaccel=hardware_decoder(self.spec.config))
        except (av.error.FFmpegError, OSError) as error:
            what = "cannot open as video" if name is None else f"cannot open with hwaccel '{name}' (no usable device?)"
            raise self._error(what, error) from error
        with container:
            if not container.streams.video:
                raise self._error("holds no video stream")
            stream = container.streams.video[0]
            limit = self.spec.config.max_frame_pixels if self.spec.config else DEFAULT_MAX_FRAME_PIXELS
            # Before any decoding: frame threads would each allocate a frame of this size.
            too_large = frame_too_large(stream.codec_context.width, stream.codec_context.height, limit)
            if too_large is not None:
                raise SourceError(f"{self.spec.path}: {too_large}")
            stream.thread_type = "AUTO"
            self.expected_frames = stream.frames or None
            if self.expected_frames is None and stream.duration and stream.average_rate:
                self.expected_frames = int(stream.duration * stream.time_base * stream.average_rate)
            sampler = FrameSampler(self.spec.every, self.spec.fps)
            damage = DecodeDamage()
            for packet in self._packets(container, stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    self.bad_packets += 1
                    damage.packet_failed()
                    continue
                for video_frame in decoded:
                    corrupt = damage.taints(video_frame)
                    # The size can change mid-stream; check before the frame is converted (×3 bytes).
                    too_large = frame_too_large(video_frame.width, video_frame.height, limit)
                    if too_large is not None:
                        raise SourceError(f"{self.spec.path}: {too_large}")
                    index = self.decoded
                    self.decoded += 1
                    pts = float(video_frame.time) if video_frame.time is not None else None
                    if not sampler.keep(index, pts):
                        continue
                    yield Frame(self.spec.id, index, pts, None, video_frame.to_ndarray(format="bgr24"), corrupt)
                if self._stop.is_set():
                    return
        if self.decoded == 0:
            raise self._error("no frame could be decoded (corrupt or truncated file?)")
        if self.bad_packets:
            log.warning("source '%s': skipped %d corrupt packets", self.spec.id, self.bad_packets)
        shortfall = missing_frames(self.decoded, self.expected_frames)
        if shortfall is not None and not self._stop.is_set():
            # The frames decoded so far were analysed; the source still fails, as in ``index``.
            raise SourceError(f"{self.spec.path}: {shortfall}")

    def _packets(self, container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.Packet]:
        # Demux and decode fail separately: a demux error ends the file, a decode error
        # only skips its packet (one exception would otherwise end PyAV's decode generator).
        demuxer = container.demux(stream)
        while True:
            try:
                packet = next(demuxer)
            except StopIteration:
                return
            except av.error.FFmpegError as error:
                if self.decoded == 0:
                    raise self._error("cannot read video data", error) from error
                log.warning("source '%s': stopped reading at a damaged spot: %s", self.spec.id, _describe(error))
                return
            yield packet
