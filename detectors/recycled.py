"""A leaking native detector kept in a child process that is replaced before it grows.

The child (detectors/yunet_host.py) reports its resident memory with every answer.
Its first ``WARMUP_CALLS`` calls set its baseline (allocator pools, first frame
sizes); once it has grown ``max_growth`` bytes past that, it is closed and a fresh one
started. The swap is done in turn, not side by side, so the two never hold memory at
the same time; it costs one start-up (about 0.1 s) on the call that triggers it.

Only the downscaled detection input crosses the pipe (about 0.7 MB for 640×360).
A child that dies is replaced and the request retried once; a second failure is a
``ModelError``. A child whose parent dies reads end of input and exits by itself.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from fiqa_stream.detectors.yunet_host import read_message, write_message
from fiqa_stream.errors import ModelError

log = logging.getLogger(__name__)

HOST_SCRIPT = Path(__file__).with_name("yunet_host.py")
WARMUP_CALLS = 50
CLOSE_TIMEOUT_S = 5.0

Answer = tuple[np.ndarray, np.ndarray, np.ndarray]


class ChildGone(Exception):
    """The detector process died, or closed its pipes."""


class _Child:
    """One detector process and its pipes."""

    def __init__(self) -> None:
        # -P: the script's folder (the package's detectors/) must not shadow other modules.
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(HOST_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self.requests: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        self.replies: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        self.ready = False
        self.calls = 0
        self.baseline: int | None = None
        self.rss = 0

    def call(self, image: np.ndarray, confidence: float) -> Answer:
        """Detect in the child; ``ChildGone`` when it died or never started."""
        try:
            if not self.ready:
                ready = read_message(self.replies)
                if not (isinstance(ready, tuple) and ready[:1] == ("ready",)):
                    raise ChildGone(f"it did not start (exit code {self.process.poll()})")
                self.ready = True
            write_message(self.requests, (image, confidence))
            message = read_message(self.replies)
        except (OSError, EOFError, ValueError) as error:
            raise ChildGone(str(error)) from error
        if message is None:
            raise ChildGone(f"it exited (exit code {self.process.poll()})")
        confidences, boxes, landmarks, rss = message
        self.calls += 1
        self.rss = int(rss)
        if self.baseline is None and self.calls >= WARMUP_CALLS:
            self.baseline = self.rss
        return confidences, boxes, landmarks

    def growth(self) -> int:
        return 0 if self.baseline is None else self.rss - self.baseline

    def close(self) -> None:
        for pipe in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                pipe.close()
        try:
            self.process.wait(CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class _Serving:
    """The child that answers now (a holder, so that a finalizer can close it)."""

    child: _Child | None = None

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
        self.child = None


class RecycledYuface:
    """``yuface.detect`` in a child process replaced every ``max_growth`` bytes of growth.

    Args:
        max_growth: bytes the child may grow past its warmed-up baseline before it is replaced.
    """

    def __init__(self, max_growth: int) -> None:
        self._max_growth = max_growth
        self._lock = threading.Lock()
        self._serving = _Serving(_Child())
        # A detector dropped without close() still ends its child.
        self._finalizer = weakref.finalize(self, self._serving.close)
        self.recycled = 0

    @property
    def pids(self) -> list[int]:
        """Process id of the live child (none once closed)."""
        return [] if self._serving.child is None else [self._serving.child.process.pid]

    def detect(self, image: np.ndarray, confidence: float) -> Answer:
        with self._lock:
            try:
                answer = self._child().call(image, confidence)
            except ChildGone as error:
                log.warning("yunet detector process failed (%s); starting a new one", error)
                self._replace()
                try:
                    answer = self._child().call(image, confidence)
                except ChildGone as again:
                    raise ModelError(f"yunet detector process failed twice: {again}") from again
            if self._child().growth() >= self._max_growth:
                log.debug("yunet detector process grew %d bytes: replacing it", self._child().growth())
                self._replace()
                self.recycled += 1
            return answer

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    def _child(self) -> _Child:
        if self._serving.child is None:
            raise ModelError("the yunet detector was closed")
        return self._serving.child

    def _replace(self) -> None:
        self._serving.close()
        self._serving.child = _Child()
