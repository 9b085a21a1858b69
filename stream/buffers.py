"""Bounded per-source frame buffers that share one wake-up condition.

The analysis loop waits on the shared condition until any source has a frame, so it
serves many sources without polling. Each buffer has a capacity and a named policy:
``block`` (files: the decoder waits, nothing is lost) or ``drop_oldest`` (live: the
freshest frame wins, every drop is counted). An item put with ``force`` (a source's end
or outage marker) is never dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Literal, TypeVar

Item = TypeVar("Item")
Policy = Literal["block", "drop_oldest"]


class FrameBuffer(Generic[Item]):
    """A bounded FIFO for one source."""

    def __init__(self, capacity: int, policy: Policy, wakeup: threading.Condition) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.policy = policy
        self.dropped = 0
        self._items: deque[tuple[bool, Item]] = deque()
        self._wakeup = wakeup

    def put(self, item: Item, stop: threading.Event, *, force: bool = False) -> bool:
        """Add an item; False if ``stop`` was set while waiting for room.

        ``force`` appends past the capacity: used for a source's end and outage
        markers, which must never be dropped or wait.
        """
        with self._wakeup:
            if not force:
                while len(self._items) >= self.capacity:
                    if self.policy == "drop_oldest" and self._drop_oldest_unforced():
                        break
                    if stop.is_set():
                        return False
                    self._wakeup.wait(0.1)
            self._items.append((force, item))
            self._wakeup.notify_all()
            return True

    def _drop_oldest_unforced(self) -> bool:
        for index, (forced, _) in enumerate(self._items):
            if not forced:
                del self._items[index]
                self.dropped += 1
                return True
        return False

    def get_nowait(self) -> Item | None:
        with self._wakeup:
            if not self._items:
                return None
            _, item = self._items.popleft()
            self._wakeup.notify_all()
            return item

    def __len__(self) -> int:
        return len(self._items)
