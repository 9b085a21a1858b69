"""Video files decoded in a thread into a bounded buffer, losing no frame.

FFmpeg releases the GIL while decoding, so each file decodes in its own thread. A file
always finishes with one ``SourceEnd`` marker, sent in ``finally``, carrying the error
that stopped it, if any.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import av.error

from fiqa_stream.errors import SourceError
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import (
    DecodeDamage,
    FrameSampler,
    describe_error,
    frame_too_large,
    hardware_decoder,
    missing_frames,
)
from fiqa_stream.stream.source_base import SourceEnd, SourceItem
from fiqa_stream.types import Frame

log = logging.getLogger(__name__)

# Demuxers a video file may be read with. Playlists and scripts (hls, concat, ...) can
# make FFmpeg open other files, so a file that probes as anything else is refused.
ALLOWED_FORMATS = (
    "mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi", "mpegts", "mpeg", "mpegvideo", "flv", "asf",
    "h264", "hevc", "m4v", "mjpeg", "ivf", "yuv4mpegpipe",
)
FILE_OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_FORMATS)}


class FileSource:
    """Decodes one video file in a thread into a bounded buffer, losing no frame."""

    def __init__(self, source_id: str, path: Path, config: SourceConfig, buffer: FrameBuffer[SourceItem],
                 stop: threading.Event) -> None:
        self.source_id = source_id
        self.path = path
        self.config = config
        self.buffer = buffer
        self.decoded = 0
        self.bad_packets = 0
        self.expected_frames: int | None = None
        self.state = "decoding"
        self.reconnects = 0
        self.outages = 0
        self.down_since: float | None = None
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name=f"decode-{source_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _error(self, what: str, error: Exception | None = None) -> SourceError:
        detail = f": {describe_error(error)}" if error else ""
        return SourceError(f"source '{self.source_id}' ({self.path}): {what}{detail}")

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
            self.state = "done"
            self.buffer.put(SourceEnd(self.source_id, failure), self._stop, force=True)

    def _frames(self) -> Iterator[Frame]:
        name = self.config.hwaccel
        try:
            container = av.open(str(self.path), options=FILE_OPEN_OPTIONS,
                                hwaccel=hardware_decoder(self.config))
        except (av.error.FFmpegError, OSError) as error:
            what = "cannot open as video" if name is None else f"cannot open with hwaccel '{name}' (no usable device?)"
            raise self._error(what, error) from error
        with container:
            if not container.streams.video:
                raise self._error("holds no video stream")
            stream = container.streams.video[0]
            limit = self.config.max_frame_pixels
            # Before any decoding: frame threads would each allocate a frame of this size.
            too_large = frame_too_large(stream.codec_context.width, stream.codec_context.height, limit)
            if too_large is not None:
                raise SourceError(f"{self.path}: {too_large}")
            stream.thread_type = "AUTO"
            self.expected_frames = stream.frames or None
            if self.expected_frames is None and stream.duration and stream.time_base and stream.average_rate:
                self.expected_frames = int(stream.duration * stream.time_base * stream.average_rate)
            sampler = FrameSampler(self.config.every, self.config.fps)
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
                        raise SourceError(f"{self.path}: {too_large}")
                    index = self.decoded
                    self.decoded += 1
                    pts = float(video_frame.time) if video_frame.time is not None else None
                    if not sampler.keep(index, pts):
                        continue
                    yield Frame(self.source_id, index, pts, None, video_frame.to_ndarray(format="bgr24"), corrupt)
                if self._stop.is_set():
                    return
        if self.decoded == 0:
            raise self._error("no frame could be decoded (corrupt or truncated file?)")
        if self.bad_packets:
            log.warning("source '%s': skipped %d corrupt packets", self.source_id, self.bad_packets)
        shortfall = missing_frames(self.decoded, self.expected_frames)
        if shortfall is not None and not self._stop.is_set():
            # The frames decoded so far were analysed; the source still fails, as in ``index``.
            raise SourceError(f"{self.path}: {shortfall}")

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
                log.warning("source '%s': stopped reading at a damaged spot: %s", self.source_id, describe_error(error))
                return
            yield packet
