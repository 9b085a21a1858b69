"""Which videos and streams a config names, and the source that decodes each one.

``expand_sources`` turns the configured sources (files, globs, folders, ``demo:``,
stream URLs, capture devices) into concrete ``SourceSpec``s with unique ids;
``open_source`` builds the ``Source`` (``source_base.py``) that decodes one of them:
a ``FileSource`` or a ``LiveSource``.
"""

from __future__ import annotations

import glob
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from av.codec.hwaccel import hwdevices_available

from fiqa_stream.errors import SourceError
from fiqa_stream.redact import redact_url
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.file_source import FileSource
from fiqa_stream.stream.live import DEVICE_PREFIX, LiveSource
from fiqa_stream.stream.source_base import Source, SourceItem

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".flv", ".wmv", ".h264", ".h265"}
)
DEMO_URL = "demo:"
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp"})


def is_live(url: str) -> bool:
    """Streams and capture devices, as opposed to files, globs and folders."""
    return url.startswith(DEVICE_PREFIX) or urlsplit(url).scheme.lower() in LIVE_SCHEMES


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One concrete video or stream to decode, after globs and folders are expanded.

    ``path`` is the video file; None for a live stream or capture device (``config.url``).
    """

    id: str
    config: SourceConfig
    path: Path | None = None

    @property
    def live(self) -> bool:
        return self.path is None

    @property
    def where(self) -> str:
        """The file, or the stream's URL without its credentials: for messages and summaries."""
        return redact_url(self.config.url) if self.path is None else str(self.path)

    @property
    def queue_size(self) -> int:
        return self.config.live_queue_size if self.path is None else self.config.queue_size


@dataclass(frozen=True, slots=True)
class UnopenedSource:
    """A configured source that named nothing to decode (a missing file, an empty folder,
    a pattern that matches nothing, a hwaccel this FFmpeg lacks): the run goes on without it
    and its summary row says why."""

    id: str
    where: str
    error: SourceError


def open_source(spec: SourceSpec, buffer: FrameBuffer[SourceItem], stop: threading.Event) -> Source:
    """The source that decodes ``spec`` into ``buffer`` until the end or ``stop``."""
    if spec.path is None:
        return LiveSource(spec.id, spec.config, buffer, stop)
    return FileSource(spec.id, spec.path, spec.config, buffer, stop)


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
            raise SourceError("no file matches this pattern")
        return matches
    path = Path(url).expanduser()
    if path.is_dir():
        videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise SourceError(f"folder holds no video files (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
        return videos
    if not path.exists():
        raise SourceError("file not found")
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


def _hwaccel_error(config: SourceConfig) -> SourceError | None:
    # PyAV silently decodes in software when FFmpeg lacks the device type; say so instead.
    available = hwdevices_available()
    if config.hwaccel is None or config.hwaccel in available:
        return None
    return SourceError(
        f"hwaccel: '{config.hwaccel}' is not supported by this FFmpeg build (it has: {', '.join(available) or 'none'})"
    )


def _unopened(config: SourceConfig, reason: SourceError) -> UnopenedSource:
    where = redact_url(config.url)
    name = Path(where).name
    source_id = config.id or (_live_id(config.url) if is_live(config.url)
                              else _safe_id(name if _is_glob(name) else Path(where).stem))
    label = f"source '{config.id}' ({where})" if config.id else f"source '{where}'"
    return UnopenedSource(source_id, where, SourceError(f"{label}: {reason}"))


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "source"


def _live_id(url: str) -> str:
    parts = urlsplit(url)
    return _safe_id(f"{parts.hostname or ''}{parts.path}" or url)


def expand_sources(configs: list[SourceConfig]) -> tuple[list[SourceSpec], list[UnopenedSource]]:
    """Turn configured sources into concrete videos with unique ids.

    A source that expands to nothing is reported in the second list; the others go on.
    """
    specs: list[SourceSpec] = []
    errors: list[UnopenedSource] = []
    taken: set[str] = set()
    for config in configs:
        hwaccel_error = _hwaccel_error(config)
        if hwaccel_error is not None:
            errors.append(_unopened(config, hwaccel_error))
            continue
        if is_live(config.url):
            base = config.id or _live_id(config.url)
            source_id, n = base, 1
            while source_id in taken:
                n += 1
                source_id = f"{base}-{n}"
            taken.add(source_id)
            specs.append(SourceSpec(source_id, config))
            continue
        try:
            paths = _paths_of(config)
        except SourceError as error:
            errors.append(_unopened(config, error))
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
            specs.append(SourceSpec(source_id, config, path))
    return specs, errors


