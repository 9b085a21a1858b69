"""Exit statuses and stop handling, shared by every command."""

from __future__ import annotations

import logging
import os
import signal
import threading
from enum import IntEnum
from types import FrameType

log = logging.getLogger("fiqa_stream")


class Exit(IntEnum):
    """What the process's exit status means."""

    OK = 0
    #: Some sources, sinks or videos failed; the others finished.
    FAILURES = 1
    #: Nothing ran: bad configuration, missing file or dependency.
    FATAL = 2
    #: Stopped by SIGINT/SIGTERM (open tracks flushed first; an index rerun finishes it).
    INTERRUPTED = 130


def install_stop_handlers(stop: threading.Event, deadline: float | None = None) -> None:
    """First SIGINT/SIGTERM: set ``stop`` (flush tracks, drain sinks); a second one aborts,
    and so does ``deadline`` seconds (plus 5 for the summary and exit) passing after the first."""

    def abort_late() -> None:
        log.error("shutdown took longer than %.0f s; aborting", deadline)
        os._exit(Exit.FAILURES)

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("%s: flushing open tracks, then stopping (again to abort)", signal.Signals(signum).name)
        stop.set()
        if deadline is not None:
            timer = threading.Timer(deadline + 5.0, abort_late)
            timer.daemon = True
            timer.start()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
