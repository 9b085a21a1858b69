"""Runs each sink in its own thread behind a bounded queue, off the analysis loop.

The queue blocks when full (``put`` waits), so a slow sink slows analysis down rather
than losing events; sinks that must never stall (Redis) keep their own spill journal.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

from fiqa_stream.sinks.base import Sink
from fiqa_stream.types import BestShot

log = logging.getLogger(__name__)

_END = None
_MAX_COALESCED = 512


class SinkDispatcher:
    """Hands events to one sink from a dedicated thread."""

    def __init__(self, sink: Sink, capacity: int) -> None:
        self.sink = sink
        self.published = 0
        self.failed = 0
        self.errors: list[str] = []
        self._queue: queue.Queue[list[BestShot] | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink.name}", daemon=True)
        self._thread.start()

    def put(self, events: Sequence[BestShot]) -> None:
        if events:
            self._queue.put(list(events))

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, then close the sink."""
        self._queue.put(_END)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("sink '%s' did not drain within %.0f s", self.sink.name, timeout or 0)
            return
        self.sink.close()

    def _next_batch(self) -> tuple[list[BestShot], bool]:
        """What is queued now, joined into one batch (one round trip under load); and
        whether the end marker was reached."""
        first = self._queue.get()
        if first is _END:
            return [], True
        batch = list(first)
        while len(batch) < _MAX_COALESCED:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is _END:
                return batch, True
            batch.extend(more)
        return batch, False

    def _run(self) -> None:
        ended = False
        while not ended:
            batch, ended = self._next_batch()
            if not batch:
                continue
            try:
                self.sink.publish(batch)
                self.published += len(batch)
            except Exception as error:  # noqa: BLE001 - a dead sink thread would stall the pipeline
                self.failed += len(batch)
                message = f"sink '{self.sink.name}': {len(batch)} event(s) not written: {error}"
                if len(self.errors) < 10:
                    self.errors.append(message)
                log.error("%s", message)
