"""Worker processes that leave when their parent dies, even by SIGKILL.

A spawned worker holds a sentinel of its parent (``multiprocessing.parent_process()``)
that turns ready the moment the parent is gone, however it died. A thread polls it next
to the parent's stop request: either one sets the worker's local stop event, so the
worker winds down as after an ordinary stop (flushing what it can); after the parent's
death the process also exits by itself once ``grace`` seconds have passed, whatever it
is still doing, so no orphan goes on decoding cameras.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_POLL_S = 0.25


class ParentWatch:
    """Sets ``local_stop`` on a stop request or the parent's death (then exits after ``grace`` s)."""

    def __init__(self, stop_requested: Callable[[], bool], local_stop: threading.Event, grace: float) -> None:
        self._stop_requested = stop_requested
        self._local_stop = local_stop
        self._grace = grace
        self._orphaned = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="parent-watch", daemon=True)

    @property
    def orphaned(self) -> bool:
        """Whether the parent process has died."""
        return self._orphaned.is_set()

    def start(self) -> ParentWatch:
        self._thread.start()
        return self

    def _watch(self) -> None:
        # Polls rather than waits: a process that dies inside ``Event.wait`` leaves a sleeper
        # behind on which the parent's ``Event.set`` would block forever.
        # It goes on watching after a stop request: a parent killed while its workers
        # flush (SIGTERM, then SIGKILL after a timeout) must not leave them behind either.
        parent = multiprocessing.parent_process()
        while parent is None or parent.is_alive():
            if self._stop_requested():
                self._local_stop.set()
            time.sleep(_POLL_S)
        self._leave(parent.pid)

    def _leave(self, parent_pid: int | None) -> None:
        self._orphaned.set()
        log.warning("parent process %s died; stopping, exit within %.0f s", parent_pid, self._grace)
        self._local_stop.set()
        time.sleep(self._grace)
        exit_orphaned()


def exit_orphaned() -> None:
    """End an orphaned worker at once, status 1: nobody is left to read what it would
    send, and a normal exit could wait on the dead parent (a queue's feeder thread)."""
    os._exit(1)
