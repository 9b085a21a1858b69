"""Fair shares of analysis when it cannot keep up with every source.

Each live source offers frames at its ceiling (``sources[].fps``, enforced by its
sampler; without one, the stream's own rate). When the sum of the ceilings exceeds what
detection can do, the analysis loop gives each batch to the sources that were analysed
least over the last ``WINDOW_S`` seconds, taking only sources that have a frame waiting.
That is max-min fairness: a source below the fair level is never kept waiting for one
above it, so every camera degrades evenly, and one that offers less than its share (a
lower ceiling, a quiet stream) gets all it offers while the others split the rest. Ties
go to the source served longest ago, which is round-robin among equals.

The bias this replaces: batches were filled from the start of the source list, so with
more cameras waiting than ``batch_frames`` the first cameras took every batch and the
last got nothing (bench/live.py on 2 cores: 4 cameras at 4.9 frames/s, 6 at 0.0).

``fair_level`` and ``fairness`` say how even the sharing was, for the metrics.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

#: Seconds over which analysed and offered rates are judged.
WINDOW_S = 5.0
#: Overloaded from when live sources lose more than this share of the frames they offer,
#: until they lose less than half of it (a gap, so that the state does not flap).
OVERLOAD_LOSS = 0.1


class RecentCount:
    """Events over the last ``window`` seconds, from a running total sampled now and then."""

    def __init__(self, window: float, now: float) -> None:
        self._window = window
        self._started = now
        # (time, running total): one sample at or before the window's start stays as its base.
        self._samples: deque[tuple[float, int]] = deque([(now, 0)])

    def update(self, now: float, total: int) -> None:
        if total != self._samples[-1][1]:
            self._samples.append((now, total))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self._window:
            self._samples.popleft()

    def count(self) -> int:
        return self._samples[-1][1] - self._samples[0][1]

    def per_second(self, now: float) -> float:
        """The rate over the window; over the time since the start while shorter than the window."""
        return self.count() / max(min(self._window, now - self._started), 1e-3)


class SourceShare:
    """What the fair scheduler knows of one source: frames it took and frames the source lost."""

    def __init__(self, now: float, window: float = WINDOW_S) -> None:
        self.taken = 0
        self.last_taken = float("-inf")
        self._analysed = RecentCount(window, now)
        self._offered = RecentCount(window, now)

    def take(self, now: float) -> None:
        self.taken += 1
        self.last_taken = now
        self._analysed.update(now, self.taken)

    def observe(self, now: float, dropped: int) -> None:
        """Brings the window up to ``now``; ``dropped``: the source's frames lost so far."""
        self._analysed.update(now, self.taken)
        self._offered.update(now, self.taken + dropped)

    def priority(self) -> tuple[int, float]:
        """Sort key: the least analysed over the window first, then the one served longest ago."""
        return self._analysed.count(), self.last_taken

    def analysed_rate(self, now: float) -> float:
        return self._analysed.per_second(now)

    def offered_rate(self, now: float) -> float:
        """Frames/s the source handed to analysis (analysed + lost): its ceiling as it stands."""
        return self._offered.per_second(now)


def fair_level(offered: Sequence[float], total: float) -> float:
    """The max-min fair rate: the level L at which sources offering less get all they offer
    and the others get L each, for ``total`` analysed frames/s (water-filling)."""
    remaining, left = total, len(offered)
    for rate in sorted(offered):
        if rate * left >= remaining:
            return remaining / left
        remaining -= rate
        left -= 1
    return max(offered, default=0.0)


def fairness(analysed: Sequence[float], offered: Sequence[float]) -> float:
    """How evenly sources degraded: the worst source's analysed rate as a share of its fair
    one (``min(offered, fair_level)``). 1.0: perfectly fair, or nothing offered; with equal
    ceilings under overload it is the minimum over the mean analysed rate."""
    level = fair_level(offered, sum(analysed))
    shares = [a / min(o, level) for a, o in zip(analysed, offered, strict=True) if min(o, level) > 0]
    return min(min(shares, default=1.0), 1.0)


def overloaded(analysed: float, offered: float, was: bool) -> bool:
    """Whether analysis cannot keep up: of ``offered`` frames/s, only ``analysed`` are
    analysed (the rest are lost by the latest-frame-wins buffers). ``was``: the state so far."""
    if offered <= 0:
        return False
    loss = 1 - analysed / offered
    return loss > (OVERLOAD_LOSS / 2 if was else OVERLOAD_LOSS)
