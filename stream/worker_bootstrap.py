"""The first steps of every worker process, ``run``'s (workers.py) and ``index``'s
(fiqa_stream/archive/local.py) alike."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from fiqa_stream.config import LoggingConfig
from fiqa_stream.logs import configure_logging
from fiqa_stream.native_heap import bound_native_heap
from fiqa_stream.stream.parent_watch import ParentWatch
from fiqa_stream.stream.threads import limit_threads


def start_worker(logging: LoggingConfig, threads: int, stop_requested: Callable[[], bool],
                 grace: float) -> tuple[threading.Event, ParentWatch]:
    """Prepare this worker process and watch its parent.

    Bounds the native heap, ignores SIGINT/SIGTERM (a terminal's Ctrl-C reaches the whole
    process group; the parent turns it into a stop request, so the worker drains instead
    of dying half-way), logs as configured and keeps the native thread pools to
    ``threads``, before any detector loads.

    Args:
        logging: the run's logging settings.
        threads: this worker's share of the cores.
        stop_requested: the parent's stop flag, read from this process.
        grace: seconds the worker may still take after its parent died, then it exits.

    Returns:
        The event set on a stop request or the parent's death, and the watch itself.
    """
    bound_native_heap()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(logging.level, logging.format == "json")
    limit_threads(threads)
    local_stop = threading.Event()
    watch = ParentWatch(stop_requested, local_stop, grace).start()
    return local_stop, watch
