"""Live sources (RTSP, HTTP/HLS, RTMP, SRT, capture devices) that survive the real world.

One thread per source opens the stream, decodes into a small latest-frame-wins buffer
(analysis always gets the freshest frame; every dropped frame is counted), and on any
failure (refused, timed out, stalled, ended, bad data) reports an outage, waits with
exponential backoff and jitter, and reconnects: forever by default, or until
``reconnect.max_attempts`` failures in a row. A stalled stream is detected by FFmpeg's
socket timeout (``read_timeout``) even when the connection stays open.

Credentials live in the config and are put into the URL only for ``av.open``; every
message, log line and event uses the redacted URL.

A camera with a ``detect_url`` (its sub-stream) is decoded twice: the detect stream as
above, the main stream (``url``) in a second thread into ``dual_stream.MainFrames``; each
analysed detect frame carries the main frame nearest in capture time. Either stream
failing is the source's outage (its message names that stream's URL), and both connect again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import quote, urlsplit, urlunsplit

import av
import av.error

from fiqa_stream.errors import SourceError
from fiqa_stream.redact import redact_text, redact_url
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import DecodeDamage, FrameSampler, frame_too_large, hardware_decoder, live_frame_skip
from fiqa_stream.stream.dual_stream import (
    Alignment,
    CaptureClock,
    MainFrames,
    packet_time,
    reports_sender_clock,
    timed_packets,
)
from fiqa_stream.stream.source_base import SourceEnd, SourceItem, SourceOutage
from fiqa_stream.types import Frame

log = logging.getLogger(__name__)

#: Prefix of a local capture device's url (``device:/dev/video0``).
DEVICE_PREFIX = "device:"


class LiveState(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    STOPPED = "stopped"
    FAILED = "failed"


def _with_credentials(url: str, username: str | None, password: str | None) -> str:
    if not username and not password:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = quote(username or "", safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def classify(error: Exception) -> str:
    """What went wrong, in words a camera operator can act on."""
    if isinstance(error, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return "wrong credentials (the server answered 401/403)"
    if isinstance(error, av.error.DecoderNotFoundError):
        return f"unsupported codec: {redact_text(error.strerror or str(error))}"
    if isinstance(error, av.error.HTTPNotFoundError):
        return "unknown path on the server (404)"
    if isinstance(error, ConnectionRefusedError):
        return "host unreachable: connection refused"
    if isinstance(error, TimeoutError):
        return "stream stalled: no data within the read timeout"
    if isinstance(error, av.error.FFmpegError):
        return redact_text(error.strerror or str(error))
    if isinstance(error, OSError):
        return redact_text(error.strerror or str(error))
    return redact_text(str(error))


class LiveSource:
    """Decodes one live stream in a thread, reconnecting until stopped."""

    def __init__(self, source_id: str, config: SourceConfig,
                 buffer: FrameBuffer[SourceItem], stop: threading.Event) -> None:
        self.source_id = source_id
        self.config = config
        self.buffer = buffer
        self.where = redact_url(config.url)
        self.decoded = 0
        self.reconnects = 0
        self.outages = 0
        self.state = LiveState.CONNECTING
        self.down_since: float | None = time.monotonic()
        self.last_frame_at: float | None = None
        self.last_error: str | None = None
        self.expected_frames: int | None = None
        #: Dual-stream cameras (``detect_url``): how detect frames were paired with main frames.
        self.alignment: Alignment | None = None if config.detect_url is None else Alignment()
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name=f"live-{source_id}", daemon=True)

    @property
    def dropped(self) -> int:
        return self.buffer.dropped

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _error(self, what: str, where: str | None = None) -> SourceError:
        return SourceError(f"source '{self.source_id}' ({where or self.where}): {what}")

    def _run(self) -> None:
        failures = 0
        final_error: SourceError | None = None
        try:
            while not self._stop.is_set():
                self.state = LiveState.CONNECTING
                try:
                    for frame in self._frames():
                        failures = 0
                        self.buffer.put(frame, self._stop)
                    if self._stop.is_set():
                        break
                    raise self._error("the stream ended")
                except SourceError as error:
                    failures += 1
                    self._outage(error)
                except Exception as error:  # noqa: BLE001 - any stream failure is an outage
                    failures += 1
                    self._outage(self._error(classify(error)))
                limit = self.config.reconnect.max_attempts
                if limit is not None and failures >= limit:
                    final_error = self._error(f"given up after {failures} failed attempts: {self.last_error}")
                    self.state = LiveState.FAILED
                    return
                self._back_off(failures)
        finally:
            if self.state is not LiveState.FAILED:
                self.state = LiveState.STOPPED
            self.buffer.put(SourceEnd(self.source_id, final_error), self._stop, force=True)

    def _outage(self, error: SourceError) -> None:
        was_streaming = self.state is LiveState.STREAMING
        self.state = LiveState.BACKOFF
        if self.down_since is None:
            self.down_since = time.monotonic()
        message = str(error)
        if was_streaming or message != self.last_error:
            log.warning("%s; reconnecting", message)
        self.last_error = message
        self.outages += 1
        if was_streaming:
            self.buffer.put(SourceOutage(self.source_id, error), self._stop, force=True)

    def _back_off(self, failures: int) -> None:
        settings = self.config.reconnect
        delay = min(settings.max_delay, settings.initial_delay * 2 ** (failures - 1))
        delay *= 1 + random.uniform(-settings.jitter, settings.jitter)
        if not self._stop.wait(max(0.05, delay)):
            self.reconnects += 1

    def _open(self, url: str, where: str) -> av.container.InputContainer:
        config = self.config
        password = config.password.get_secret_value() if config.password else None
        # FFmpeg's socket timeout (µs) bounds every read, so a stream that stalls with its
        # connection open still fails; PyAV's own timeout bounds only the open here.
        options = {"timeout": str(int(config.read_timeout * 1_000_000)), "fflags": "+genpts+discardcorrupt"}
        container_format = None
        if url.startswith(DEVICE_PREFIX):
            url, container_format, options = url[len(DEVICE_PREFIX):], "v4l2", {}
        elif urlsplit(url).scheme.lower() in ("rtsp", "rtsps"):
            options["rtsp_transport"] = config.transport
        elif urlsplit(url).scheme.lower() in ("http", "https"):
            options["rw_timeout"] = options["timeout"]
        try:
            return av.open(_with_credentials(url, config.username, password), format=container_format,
                           options=options, timeout=(config.open_timeout, None), hwaccel=hardware_decoder(config))
        except Exception as error:
            hint = f" (hwaccel '{config.hwaccel}': no usable device?)" if config.hwaccel else ""
            raise self._error(classify(error) + hint, where) from None

    def _video(self, container: av.container.InputContainer, where: str) -> av.VideoStream:
        if not container.streams.video:
            raise self._error("the stream holds no video", where)
        stream = container.streams.video[0]
        # Before any decoding; a stream that declares no size yet is checked frame by frame.
        too_large = frame_too_large(stream.codec_context.width, stream.codec_context.height,
                                    self.config.max_frame_pixels)
        if too_large is not None:
            raise self._error(too_large, where)
        stream.thread_type = "AUTO"
        return stream

    def _decoded(self, container: av.container.InputContainer, stream: av.VideoStream, where: str,
                 clock: CaptureClock | MainFrames | None = None) -> Iterator[tuple[av.VideoFrame, bool]]:
        """The stream's frames and whether each may show garbage, until it ends or ``stop``;
        ``clock`` learns when each packet came."""
        damage = DecodeDamage()
        for packet, arrival, waited in timed_packets(container, stream):
            if clock is not None:
                clock.arrived(packet_time(packet), arrival, waited, container.start_time_realtime)
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                damage.packet_failed()
                continue
            for video_frame in decoded:
                corrupt = damage.taints(video_frame)
                too_large = frame_too_large(video_frame.width, video_frame.height, self.config.max_frame_pixels)
                if too_large is not None:
                    raise self._error(too_large, where)
                yield video_frame, corrupt
            if self._stop.is_set():
                return

    def _streaming(self) -> float:
        """A frame of the (detect) stream came: the source is up. Returns the time now."""
        now = time.monotonic()
        if self.state is not LiveState.STREAMING:
            self.state = LiveState.STREAMING
            self.down_since = None
            log.info("source '%s' (%s): streaming", self.source_id, self.where)
        self.last_frame_at = now
        return now

    def _frames(self) -> Iterator[Frame]:
        if self.config.detect_url is not None:
            yield from self._paired_frames(self.config.detect_url)
            return
        container = self._open(self.config.url, self.where)
        try:
            stream = self._video(container, self.where)
            stream.codec_context.skip_frame = live_frame_skip(self.config, stream.average_rate)
            sampler = FrameSampler(self.config.every, self.config.fps)
            for video_frame, corrupt in self._decoded(container, stream, self.where):
                now = self._streaming()
                index = self.decoded
                self.decoded += 1
                if not sampler.keep(index, now):
                    continue
                pts = float(video_frame.time) if video_frame.time is not None else None
                yield Frame(self.source_id, index, pts, datetime.now(UTC),
                            video_frame.to_ndarray(format="bgr24"), corrupt)
        finally:
            container.close()

    def _paired_frames(self, detect_url: str) -> Iterator[Frame]:
        """A dual-stream camera's frames: those of its detect stream, each carrying the
        main-stream frame nearest in capture time (``Frame.full``). Detect frames with no
        main frame near enough are not analysed (``alignment`` counts them)."""
        if self.alignment is None:
            raise ValueError("a dual-stream source needs its alignment record")
        where = redact_url(detect_url)
        paired_before = self.alignment.paired
        main = MainFrames(reports_sender_clock(self.config.url))
        main_stop = threading.Event()
        # Both streams connect at once: the main stream's thread opens it while this one opens the other.
        main_thread = threading.Thread(target=self._decode_main, args=(main, main_stop),
                                       name=f"live-{self.source_id}-main", daemon=True)
        main_thread.start()
        try:
            container = self._open(detect_url, where)
            try:
                stream = self._video(container, where)
                # Only the detect stream: any main frame may turn out nearest to an analysed one.
                stream.codec_context.skip_frame = live_frame_skip(self.config, stream.average_rate)
                clock = CaptureClock(reports_sender_clock(detect_url))
                sampler = FrameSampler(self.config.every, self.config.fps)
                for video_frame, corrupt in self._decoded(container, stream, where, clock):
                    if main.failure is not None:
                        raise main.failure
                    now = self._streaming()
                    index = self.decoded
                    self.decoded += 1
                    if not sampler.keep(index, now):
                        continue
                    # Before the wait for the main stream: the latency the pipeline reports includes it.
                    captured_at = datetime.now(UTC)
                    pts = float(video_frame.time) if video_frame.time is not None else None
                    paired = main.pair(clock, pts, self._stop, self.alignment)
                    if paired is None:
                        continue
                    full, main_corrupt = paired
                    yield Frame(self.source_id, index, pts, captured_at,
                                video_frame.to_ndarray(format="bgr24"), corrupt or main_corrupt, full)
            finally:
                container.close()
        finally:
            main_stop.set()
            # The main stream's thread ends with its next frame, or at its read timeout when stalled.
            main_thread.join(self.config.read_timeout)
            if self.alignment.paired > paired_before:
                log.info("source '%s': %s", self.source_id, self.alignment.summary())

    def _decode_main(self, main: MainFrames, stop: threading.Event) -> None:
        """A dual-stream camera's main stream, decoded into ``main`` until ``stop``; why it
        ended, unless stopped, goes to ``main.failure``."""
        try:
            container = self._open(self.config.url, self.where)
            try:
                if stop.is_set():
                    return  # the detect stream failed while this one was opening
                stream = self._video(container, self.where)
                for video_frame, corrupt in self._decoded(container, stream, self.where, main):
                    if video_frame.time is not None:
                        main.put(float(video_frame.time), video_frame, corrupt)
                    if stop.is_set():
                        return
            finally:
                container.close()
            if not self._stop.is_set():
                main.fail(self._error("the stream ended", self.where))
        except SourceError as error:
            main.fail(error)
        except Exception as error:  # noqa: BLE001 - any stream failure is the source's outage
            main.fail(self._error(classify(error), self.where))
