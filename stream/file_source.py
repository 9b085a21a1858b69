"""Video files decoded in a thread into a bounded buffer, losing no frame.

FFmpeg releases the GIL while decoding, so each file decodes in its own thread. A file
always finishes with one ``SourceEnd`` marker, sent in ``finally``, carrying the error
that stopped it, if any.

Only analysed frames are converted to BGR. When the sampler keeps only some frames, when
the config names ``spans``, or for the coarse pass of ``index`` (key frames only), the
file's packets are first read without decoding (``Timeline``): the decoder then skips the
non-reference frames no analysed frame needs, seeks to the key frame before each span,
and every frame still gets the index a full decode gives it. Codecs outside
``TIMELINE_CODECS`` and files whose packets lack times are decoded whole, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import av.error
import numpy as np

from fiqa_stream.errors import SourceError
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import (
    TIMELINE_CODECS,
    DecodeDamage,
    FrameSampler,
    FrameSkip,
    Timeline,
    describe_error,
    frame_too_large,
    hardware_decoder,
    missing_frames,
    still_image,
)
from fiqa_stream.stream.source_base import SourceEnd, SourceItem, SourceOutage
from fiqa_stream.types import Frame

log = logging.getLogger(__name__)

# Demuxers a video file may be read with. Playlists and scripts (hls, concat, ...) can
# make FFmpeg open other files, so a file that probes as anything else is refused.
ALLOWED_FORMATS = (
    "mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi", "mpegts", "mpeg", "mpegvideo", "flv", "asf",
    "h264", "hevc", "m4v", "mjpeg", "ivf", "yuv4mpegpipe",
)
FILE_OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_FORMATS)}


def scan_timeline(path: Path) -> Timeline | None:
    """The frames of the file's first video stream, from one pass over its packets without
    decoding (a 10-minute 720p file takes well under a second); None when its codec is
    not one of ``TIMELINE_CODECS``, a packet has no time, or the file cannot be read.
    A damaged spot ends the scan: the frames before it are the timeline."""
    try:
        with av.open(str(path), options=FILE_OPEN_OPTIONS) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.codec_context.name not in TIMELINE_CODECS or stream.time_base is None:
                return None
            packets: list[tuple[int | None, bool]] = []
            demuxer = container.demux(stream)
            while True:
                try:
                    packet = next(demuxer)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    break
                if packet.size and not packet.is_discard:
                    packets.append((packet.pts, packet.is_keyframe))
            return Timeline.of(packets, stream.time_base) if packets else None
    except (av.error.FFmpegError, OSError):
        return None


class FileSource:
    """Decodes one video file in a thread into a bounded buffer, losing no frame.

    ``key_frame_gap`` decodes nothing but key frames, as few as keep the frames it yields
    at most that many seconds apart (each where they lie further apart): the coarse pass
    of ``index``; it needs a timeline, and ignores the sampler and ``spans``.
    ``max_width`` converts wider frames to BGR at that width (for detection alone);
    ``timeline`` hands in a timeline already read (else it is read when it helps).
    """

    def __init__(self, source_id: str, path: Path, config: SourceConfig, buffer: FrameBuffer[SourceItem],
                 stop: threading.Event, *, key_frame_gap: float | None = None, max_width: int | None = None,
                 timeline: Timeline | None = None) -> None:
        self.source_id = source_id
        self.path = path
        self.config = config
        self.buffer = buffer
        self.decoded = 0
        #: Frames of the file behind the decoder, decoded or skipped: the progress through it.
        self.position = 0
        self.bad_packets = 0
        self.expected_frames: int | None = None
        self.state = "decoding"
        self.reconnects = 0
        self.outages = 0
        self.down_since: float | None = None
        self._stop = stop
        self._key_frame_gap = key_frame_gap
        self._max_width = max_width
        self._timeline = timeline
        #: Whether the demuxer moved: a range that starts elsewhere must seek.
        self._read = False
        #: Whether the plan needed any frame: spans may hold none of the analysed ones.
        self._needs_frames = True
        #: Decoded frames whose pts no packet had (the timeline did not hold): not analysed.
        self._unplaced = 0
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
            for item in self._items():
                if not self.buffer.put(item, self._stop):
                    break
        except SourceError as error:
            failure = error
        except Exception as error:  # noqa: BLE001 - any decoder failure ends this source only
            failure = self._error("decoding failed", error)
        finally:
            self.state = "done" if failure is None else "failed"
            self.buffer.put(SourceEnd(self.source_id, failure), self._stop, force=True)

    def _items(self) -> Iterator[Frame | SourceOutage]:
        if (photo := still_image(self.path)) is not None:
            raise self._error(photo)
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
            # Before any decoding: frame threads would each allocate a frame of this size.
            too_large = frame_too_large(stream.codec_context.width, stream.codec_context.height,
                                        self.config.max_frame_pixels)
            if too_large is not None:
                raise SourceError(f"{self.path}: {too_large}")
            stream.thread_type = "AUTO"
            self.expected_frames = stream.frames or None
            if self.expected_frames is None and stream.duration and stream.time_base and stream.average_rate:
                self.expected_frames = int(stream.duration * stream.time_base * stream.average_rate)
            sampler = FrameSampler(self.config.every, self.config.fps)
            timeline = self._timeline
            if timeline is None and self._needs_timeline(stream):
                timeline = scan_timeline(self.path)
            if self._key_frame_gap is not None and timeline is None:
                raise self._error("key frames alone can only be decoded where the packets tell the frames apart")
            if timeline is None:
                yield from self._decode_all(container, stream, sampler)
            else:
                yield from self._decode_planned(container, stream, timeline, sampler)
        if self._unplaced:
            log.warning("source '%s': %d decoded frames had a time no packet had; they were not analysed",
                        self.source_id, self._unplaced)
        if self.decoded == 0 and self._needs_frames:
            raise self._error("no frame could be decoded (corrupt or truncated file?)")
        if self.bad_packets:
            log.warning("source '%s': skipped %d corrupt packets", self.source_id, self.bad_packets)
        # With a timeline, the frames the file holds are its packets (most were not decoded),
        # less those that failed to decode.
        held = self.decoded if timeline is None else len(timeline) - self.bad_packets
        shortfall = missing_frames(held, self.expected_frames)
        if shortfall is not None and not self._stop.is_set():
            # The frames decoded so far were analysed; the source still fails, as in ``index``.
            raise SourceError(f"{self.path}: {shortfall}")

    def _needs_timeline(self, stream: av.VideoStream) -> bool:
        """Whether reading the packets first saves decoding: some frames are not analysed."""
        config = self.config
        rate = float(stream.average_rate) if stream.average_rate else None
        thinned = config.every > 1 or (config.fps is not None and (rate is None or config.fps < rate))
        return self._key_frame_gap is not None or bool(config.spans) or thinned

    def _image(self, video_frame: av.VideoFrame) -> np.ndarray:
        width = self._max_width
        if width is not None and video_frame.width > width:
            height = max(2, round(video_frame.height * width / video_frame.width))
            return video_frame.reformat(width=width, height=height, format="bgr24").to_ndarray()
        return video_frame.to_ndarray(format="bgr24")

    def _check_size(self, video_frame: av.VideoFrame) -> None:
        # The size can change mid-stream; check before the frame is converted (×3 bytes).
        too_large = frame_too_large(video_frame.width, video_frame.height, self.config.max_frame_pixels)
        if too_large is not None:
            raise SourceError(f"{self.path}: {too_large}")

    def _gap(self, seconds: float) -> SourceOutage:
        # The frames in between are not analysed: whoever is tracked now is not followed there.
        return SourceOutage(self.source_id, SourceError(
            f"source '{self.source_id}' ({self.path}): skipped to the next stretch, at {seconds:.2f} s"))

    def _decode(self, packet: av.Packet, damage: DecodeDamage) -> Iterator[tuple[av.VideoFrame, bool]]:
        """The packet's frames, each with whether it may show damage; a packet that fails to
        decode is counted and taints the frames after it, and its size is checked before use."""
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            self.bad_packets += 1
            damage.packet_failed()
            return
        for video_frame in decoded:
            corrupt = damage.taints(video_frame)
            self._check_size(video_frame)
            yield video_frame, corrupt

    def _decode_all(self, container: av.container.InputContainer, stream: av.VideoStream,
                    sampler: FrameSampler) -> Iterator[Frame | SourceOutage]:
        """Every frame decoded, in order, its index counted; ``spans`` only filter."""
        spans = self.config.spans
        damage = DecodeDamage()
        current: int | None = None
        for packet in self._packets(container, stream):
            for video_frame, corrupt in self._decode(packet, damage):
                index = self.decoded
                self.decoded += 1
                self.position = self.decoded
                pts = float(video_frame.time) if video_frame.time is not None else None
                if not sampler.keep(index, pts):
                    continue
                if spans is not None:
                    span = _span_of(spans, pts)
                    if span is None:
                        continue
                    if current is not None and span != current and pts is not None:
                        yield self._gap(pts)
                    current = span
                yield Frame(self.source_id, index, pts, None, self._image(video_frame), corrupt)
            if self._stop.is_set():
                return

    def _decode_planned(self, container: av.container.InputContainer, stream: av.VideoStream,
                        timeline: Timeline, sampler: FrameSampler) -> Iterator[Frame | SourceOutage]:
        """The frames the plan needs, each range from the key frame before it."""
        damage = DecodeDamage()
        if self._key_frame_gap is not None:
            # Key frames need no other: frame threads would only delay them, and a damaged
            # last one would take the frames the threads still hold down with it.
            stream.thread_type = "SLICE"
            keys = np.zeros(len(timeline), dtype=bool)
            keys[timeline.spread_keys(self._key_frame_gap)] = True
            yield from self._decode_range(container, stream, timeline, keys, 0, len(timeline) - 1, damage,
                                          skip="ALL", keep="NONKEY")
            return
        wanted = timeline.kept(sampler)
        spans = self.config.spans
        ranges = timeline.ranges(spans) if spans is not None else [(0, len(timeline) - 1)]
        self._needs_frames = any(wanted[first : last + 1].any() for first, last in ranges)
        started = False
        for first, last in ranges:
            needed = np.flatnonzero(wanted[first : last + 1])
            if not len(needed):
                continue
            if started:
                yield self._gap(timeline.seconds(first + int(needed[0])))
            started = True
            yield from self._decode_range(container, stream, timeline, wanted, first + int(needed[0]),
                                          first + int(needed[-1]), damage)
            if self._stop.is_set():
                return

    def _decode_range(self, container: av.container.InputContainer, stream: av.VideoStream, timeline: Timeline,
                      wanted: np.ndarray, first: int, last: int, damage: DecodeDamage, *,
                      skip: FrameSkip = "NONREF", keep: FrameSkip = "DEFAULT") -> Iterator[Frame]:
        """Frames ``first``..``last`` that are ``wanted``, decoded from the key frame before
        ``first``; the decoder's ``skip_frame`` is ``keep`` for the packets of wanted frames
        and ``skip`` for the others (``NONREF``: the non-reference frames no wanted frame
        needs; ``ALL`` where only key frames are wanted, which need no other)."""
        key = timeline.key_before(first)
        context = stream.codec_context
        while True:
            if self._read or key > 0:
                container.seek(int(timeline.pts[key]), stream=stream, backward=True)
            landed_late = False
            placed = False
            for packet in self._packets(container, stream):
                self._read = True
                index = timeline.index(packet.pts)
                needed = index is None or (first <= index <= last and bool(wanted[index]))
                setting = keep if needed else skip
                if context.skip_frame != setting:
                    context.skip_frame = setting
                for video_frame, corrupt in self._decode(packet, damage):
                    self.decoded += 1
                    index = timeline.index(video_frame.pts)
                    if index is None:
                        self._unplaced += 1
                        continue
                    if not placed and index > first and key > 0:
                        # The demuxer landed after the frame sought: back one key frame.
                        landed_late = True
                        break
                    placed = True
                    self.position = max(self.position, index + 1)
                    if index > last:
                        return
                    if index < first or not wanted[index]:
                        continue
                    pts = float(video_frame.time) if video_frame.time is not None else None
                    yield Frame(self.source_id, index, pts, None, self._image(video_frame), corrupt)
                if landed_late or self._stop.is_set():
                    break
            if not landed_late:
                return
            key = timeline.key_before(key - 1)

    def _packets(self, container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.Packet]:
        # Demux and decode fail separately: a demux error ends the file, a decode error
        # only skips its packet (one exception would otherwise end PyAV's decode generator).
        demuxer = container.demux(stream)
        read = False
        while True:
            try:
                packet = next(demuxer)
            except StopIteration:
                return
            except av.error.FFmpegError as error:
                if self.decoded == 0 and not read:
                    raise self._error("cannot read video data", error) from error
                log.warning("source '%s': stopped reading at a damaged spot: %s", self.source_id, describe_error(error))
                # The frames the decoder still holds (its threads and reordering delay them)
                # come out with an empty packet, as at the end of a file.
                flush = av.Packet()
                flush.stream = stream
                yield flush
                return
            read = True
            yield packet


def _span_of(spans: list[tuple[float, float]], pts: float | None) -> int | None:
    """The number of the span that holds media time ``pts``; None when none does."""
    if pts is None:
        return None
    for number, (start, end) in enumerate(spans):
        if start - 1e-9 <= pts <= end + 1e-9:
            return number
    return None
