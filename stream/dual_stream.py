"""Dual-stream cameras: faces found on the camera's small sub-stream, best shots cut from its main stream.

A camera that names a low-resolution ``detect_url`` (its sub-stream) beside its main
``url`` is decoded twice by one ``LiveSource`` (``live.py``): the detect stream feeds
detection, tracking and scoring like any live source; the main stream is decoded in a
thread of its own into ``MainFrames``, a small ring of its latest frames, and each
analysed detect frame is paired with the main frame nearest in capture time
(``Frame.full``). Main frames stay in the decoder's format; only those a best shot is
cut from are ever converted to BGR (``FullResolution.image``).

Capture time. The two streams are two RTSP sessions with RTP clocks of their own, and
their frames reach us with different delays (a 1080p frame takes longer to send and to
decode than a 640×360 one), so neither arrival order nor pts can pair them: pairing the
latest frames is how Frigate's attempt drifted apart. ``CaptureClock`` gives each stream
two clocks:

- the sender's: RTCP sender reports tie RTP time to the camera's wall clock, the same
  for both streams (what RTP senders report it for: to synchronise separate sessions).
  FFmpeg gives it as ``start_time_realtime``, the wall-clock time of the first RTP
  packet, once the first report has come (about 3 s after connecting to GStreamer's
  server). It adds the PLAY reply's ``Range`` start to every pts, so the wall-clock time
  of a frame is ``start_time_realtime`` plus its pts minus the first packet's (seen here:
  a client joined to a stream playing for 1.5 s got pts from 1.5 s, and
  ``start_time_realtime`` + pts was 1.5 s late);
- arrival corrected by pts progression: pts plus the smallest (arrival − pts) seen
  lately, i.e. each frame's time as if it had come as fast as the fastest did. Only
  packets FFmpeg had to wait for count as arrivals: the ones it buffered while probing a
  new stream are handed over in a burst long after they came. It is only as good as
  the two decoding threads are prompt: on a starved machine (load 20 on 2 cores) it was
  seen half a second off.

Frames are paired on the sender's clock once both streams have it. An RTSP stream is
given ``SENDER_GRACE`` seconds for its first report; streams without reports (other
protocols, or cameras that send none) are paired on arrival. A detect frame that cannot
be paired yet is not analysed: after each (re)connection, the frames FFmpeg buffered
while probing and those before the first sender reports (about 3 s here).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import av

from fiqa_stream.errors import SourceError
from fiqa_stream.types import FullResolution

#: Seconds of arrivals the fastest one is taken from: long enough to hold frames that came
#: without queueing, short enough to follow the drift between the camera's clock and
#: this host's (100 ppm is 1 ms in 10 s).
ARRIVAL_WINDOW = 10.0
#: A packet whose ``demux`` took at least this long came from the network just then; a
#: quicker one may have waited in a buffer.
WAITED = 0.002
#: Main frames kept for pairing: at most this many (a second at 25 fps) ...
RING_FRAMES = 25
#: ... and at most this many bytes of them (five 4K frames); the oldest go first.
RING_BYTES = 64 * 2**20
#: Longest a detect frame waits for the main stream to pass its capture time.
MAX_WAIT = 0.5
#: A detect frame whose nearest main frame lies further away in capture time is not
#: analysed: the main stream lost frames there, or lags by more than ``MAX_WAIT``.
MAX_SKEW = 0.1
#: Seconds an RTSP stream (whose sender should report its clock) is paired on nothing
#: else, from its first packet: RFC 3550 senders report within about 4 s of starting.
SENDER_GRACE = 5.0
#: Protocols whose streams carry sender reports (RTCP).
REPORTING_SCHEMES = frozenset({"rtsp", "rtsps"})


def reports_sender_clock(url: str) -> bool:
    """Whether the stream at ``url`` should come with RTCP sender reports."""
    return urlsplit(url).scheme.lower() in REPORTING_SCHEMES


class CaptureClock:
    """When one stream's frames were captured: on the sender's clock, and by arrival.

    Args:
        expects_sender: the stream's protocol carries sender reports (``reports_sender_clock``).
    """

    def __init__(self, expects_sender: bool) -> None:
        self.expects_sender = expects_sender
        # (arrival, arrival − pts) with rising lags: the front is the least in the window.
        self._fastest: deque[tuple[float, float]] = deque()
        self._first_pts: float | None = None
        self._first_arrival: float | None = None
        self._last_arrival: float | None = None
        #: Least (arrival − pts) of the window, on ``time.monotonic()``; None until a packet came.
        self.lag: float | None = None
        #: Sender's wall-clock time (Unix seconds) at pts 0; None until a sender report came.
        self.origin: float | None = None

    def arrived(self, pts: float | None, arrival: float, waited: bool, sender_start: int | None) -> None:
        """One demuxed packet: its pts (seconds), when ``demux`` handed it over, whether
        it had to be waited for, and the container's ``start_time_realtime`` (µs) now."""
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._last_arrival = arrival
        if self._first_pts is None:
            self._first_pts = pts
        if sender_start is not None and self._first_pts is not None:
            self.origin = sender_start / 1_000_000 - self._first_pts
        if pts is None or not waited:
            return
        lag = arrival - pts
        fastest = self._fastest
        while fastest and fastest[-1][1] >= lag:
            fastest.pop()
        fastest.append((arrival, lag))
        while fastest[0][0] < arrival - ARRIVAL_WINDOW:
            fastest.popleft()
        self.lag = fastest[0][1]

    def awaiting_sender(self) -> bool:
        """Its sender's first report is still to come, and may yet (``SENDER_GRACE``)."""
        if not self.expects_sender or self.origin is not None:
            return False
        if self._first_arrival is None or self._last_arrival is None:
            return True
        return self._last_arrival - self._first_arrival < SENDER_GRACE

    def sender_minus_arrival(self) -> float | None:
        """Sender time minus arrival time of any frame, or None while either is unknown."""
        if self.origin is None or self.lag is None:
            return None
        return self.origin - self.lag


def timed_packets(container: av.container.InputContainer, stream: av.VideoStream
                  ) -> Iterator[tuple[av.Packet, float, bool]]:
    """The stream's packets, each with when ``demux`` handed it over (``time.monotonic()``)
    and whether it had to be waited for (``WAITED``)."""
    demuxer = container.demux(stream)
    while True:
        asked = time.monotonic()
        try:
            packet = next(demuxer)
        except StopIteration:
            return
        arrival = time.monotonic()
        yield packet, arrival, arrival - asked >= WAITED


def packet_time(packet: av.Packet) -> float | None:
    """The packet's pts in seconds, or None."""
    if packet.pts is None or packet.time_base is None:
        return None
    return float(packet.pts * packet.time_base)


@dataclass(slots=True)
class Alignment:
    """How one dual-stream camera's pairing went, over the whole run.

    Attributes:
        paired: detect frames paired with a main frame.
        unpaired: detect frames that could not be (and were not analysed), by reason:
            ``awaiting_sender_clock`` (an RTSP stream's first sender report still to come),
            ``unsynced`` (a stream's arrivals not yet known), ``no_pts``, ``no_main_frame``
            (none in the ring) or ``too_far`` (nearest beyond ``MAX_SKEW``).
        bases: pairs formed on each clock, ``sender`` or ``arrival``.
        skews: main minus detect capture time of the latest pairs, in seconds.
        disagreement: the latest difference of the two streams' (sender − arrival) times,
            in seconds: how far off pairing on arrival would have been.
    """

    paired: int = 0
    unpaired: Counter[str] = field(default_factory=Counter)
    bases: Counter[str] = field(default_factory=Counter)
    skews: deque[float] = field(default_factory=lambda: deque(maxlen=4096))
    disagreement: float | None = None

    def summary(self) -> str:
        """One line for the log: pairs, their skew, and the frames not paired."""
        skews = sorted(abs(skew) for skew in self.skews)
        spread = (f", skew p50 {1000 * skews[len(skews) // 2]:.1f} ms, p99 "
                  f"{1000 * skews[min(len(skews) - 1, int(0.99 * len(skews)))]:.1f} ms" if skews else "")
        clocks = ", ".join(f"{basis} {count}" for basis, count in sorted(self.bases.items()))
        missed = ", ".join(f"{why} {count}" for why, count in sorted(self.unpaired.items())) or "none"
        return (f"{self.paired} detect frames paired with the main stream ({clocks or 'no clock yet'}){spread}; "
                f"not paired: {missed}")


@dataclass(frozen=True, slots=True)
class _MainFrame:
    pts: float
    frame: av.VideoFrame
    corrupt: bool
    size: int


class MainFrames:
    """The latest frames of a dual-stream camera's main stream, for pairing.

    Its decoding thread calls ``arrived``, ``put`` and, when the stream fails, ``fail``;
    the detect stream's thread calls ``pair``. Bounded by ``max_frames`` and ``max_bytes``:
    the oldest frame goes first (it is the least likely to be nearest a detect frame
    still to come).
    """

    def __init__(self, expects_sender: bool, max_frames: int = RING_FRAMES, max_bytes: int = RING_BYTES) -> None:
        self.clock = CaptureClock(expects_sender)
        #: Why the main stream stopped; the detect stream's thread raises it as the source's outage.
        self.failure: SourceError | None = None
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._frames: deque[_MainFrame] = deque()
        self._bytes = 0
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._frames)

    def arrived(self, pts: float | None, arrival: float, waited: bool, sender_start: int | None) -> None:
        with self._changed:
            self.clock.arrived(pts, arrival, waited, sender_start)

    def put(self, pts: float, frame: av.VideoFrame, corrupt: bool) -> None:
        size = sum(plane.buffer_size for plane in frame.planes)
        with self._changed:
            self._frames.append(_MainFrame(pts, frame, corrupt, size))
            self._bytes += size
            while len(self._frames) > 1 and (len(self._frames) > self._max_frames or self._bytes > self._max_bytes):
                self._bytes -= self._frames.popleft().size
            self._changed.notify_all()

    def fail(self, error: SourceError) -> None:
        with self._changed:
            self.failure = error
            self._changed.notify_all()

    def pair(self, detect: CaptureClock, pts: float | None, stop: threading.Event,
             alignment: Alignment) -> tuple[FullResolution, bool] | None:
        """The main frame nearest in capture time to the detect frame at ``pts`` and
        whether it is corrupt; None when there is none close enough (counted in
        ``alignment``) or the main stream failed (``failure``).

        Waits, up to ``MAX_WAIT``, until the main stream has passed the detect frame's
        time: its nearest frame may still be on its way.
        """
        if pts is None:
            alignment.unpaired["no_pts"] += 1
            return None
        deadline = time.monotonic() + MAX_WAIT
        with self._changed:
            while True:
                if self.failure is not None or stop.is_set():
                    return None
                basis = self._basis(detect, alignment)
                if basis in ("awaiting_sender_clock", "unsynced"):
                    alignment.unpaired[basis] += 1
                    return None
                target = self._detect_time(detect, pts, basis)
                if self._frames and self._time(self._frames[-1], basis) >= target:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, 0.05))
            nearest = min(self._frames, key=lambda m: abs(self._time(m, basis) - target), default=None)
        if nearest is None:
            alignment.unpaired["no_main_frame"] += 1
            return None
        skew = self._time(nearest, basis) - target
        if abs(skew) > MAX_SKEW:
            alignment.unpaired["too_far"] += 1
            return None
        alignment.paired += 1
        alignment.bases[basis] += 1
        alignment.skews.append(skew)
        frame = nearest.frame
        full = FullResolution(frame.width, frame.height, lambda: frame.to_ndarray(format="bgr24"), skew)
        return full, nearest.corrupt

    def _basis(self, detect: CaptureClock, alignment: Alignment) -> str:
        """The clock to pair on, ``sender`` or ``arrival``, or why there is none yet."""
        main = self.clock
        if main.origin is not None and detect.origin is not None:
            ours, theirs = main.sender_minus_arrival(), detect.sender_minus_arrival()
            if ours is not None and theirs is not None:
                alignment.disagreement = ours - theirs
            return "sender"
        if main.awaiting_sender() or detect.awaiting_sender():
            return "awaiting_sender_clock"
        if main.lag is None or detect.lag is None:
            return "unsynced"
        return "arrival"

    @staticmethod
    def _detect_time(detect: CaptureClock, pts: float, basis: str) -> float:
        offset = detect.origin if basis == "sender" else detect.lag
        if offset is None:
            raise ValueError(f"the detect stream has no {basis} clock")
        return pts + offset

    def _time(self, main: _MainFrame, basis: str) -> float:
        offset = self.clock.origin if basis == "sender" else self.clock.lag
        if offset is None:
            raise ValueError(f"the main stream has no {basis} clock")
        return main.pts + offset
