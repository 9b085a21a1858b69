"""A leaking native detector kept in child processes that are replaced before they grow.

Each child (detectors/yunet_host.py) reports its resident memory with every answer.
Its first ``WARMUP_CALLS`` calls set its baseline (allocator pools, first frame
sizes); once it has grown ``max_growth`` bytes past that, it is closed and a fresh one
started in its place, which starts up (about 0.1 s) while the other children work.

Several children detect the images of one call side by side, each taking the next
image as soon as it answered, so the cores the analysis loop leaves idle detect.
Only the downscaled detection input crosses a pipe (about 0.7 MB for 640×360).
A child that dies is replaced and its image retried once; a second failure is a
``ModelError``. A child whose parent dies reads end of input and exits by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import sys
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    """One detector process and its pipes; at most one request is ever outstanding.

    Args:
        threads: its OpenMP threads (``OMP_NUM_THREADS``); None: inherited.
    """

    def __init__(self, threads: int | None = None) -> None:
        env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
        # -P: the script's folder (the package's detectors/) must not shadow other modules.
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(HOST_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self.requests: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        self.replies: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        self.ready = False
        self.calls = 0
        self.baseline: int | None = None
        self.rss = 0

    def fileno(self) -> int:
        """The reply pipe, for ``select``: readable when the child's next message came."""
        return self.replies.fileno()

    def send(self, image: np.ndarray, confidence: float) -> None:
        try:
            write_message(self.requests, (image, confidence))
        except (OSError, ValueError) as error:
            raise ChildGone(str(error)) from error

    def receive(self) -> Answer | None:
        """The next message: an answer, or ``None`` for the start-up message (the child is
        ready now). ``ChildGone`` when it died or never started."""
        try:
            message = read_message(self.replies)
        except (OSError, EOFError, ValueError) as error:
            raise ChildGone(str(error)) from error
        if message is None:
            raise ChildGone(f"it exited (exit code {self.process.poll()})")
        if not self.ready:
            if not (isinstance(message, tuple) and message[:1] == ("ready",)):
                raise ChildGone(f"it did not start (exit code {self.process.poll()})")
            self.ready = True
            return None
        confidences, boxes, landmarks, rss = message
        self.calls += 1
        self.rss = int(rss)
        if self.baseline is None and self.calls >= WARMUP_CALLS:
            self.baseline = self.rss
        return confidences, boxes, landmarks

    def call(self, image: np.ndarray, confidence: float) -> Answer:
        """Detect in the child, waiting for it to start first."""
        while not self.ready:
            self.receive()
        self.send(image, confidence)
        answer = self.receive()
        assert answer is not None
        return answer

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
    """The children that answer now (a holder, so that a finalizer can close them)."""

    children: list[_Child] = field(default_factory=list)

    def close(self) -> None:
        for child in self.children:
            child.close()
        self.children = []


class RecycledYuface:
    """``yuface.detect`` in ``processes`` child processes, each replaced every ``max_growth`` bytes of growth.

    Args:
        max_growth: bytes a child may grow past its warmed-up baseline before it is replaced.
        processes: children detecting side by side.
        threads: each child's OpenMP threads; None: inherited from this process's environment.
    """

    def __init__(self, max_growth: int, processes: int = 1, threads: int | None = None) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        self._max_growth = max_growth
        self._threads = threads
        self._lock = threading.Lock()
        self._serving = _Serving([_Child(threads) for _ in range(processes)])
        # A detector dropped without close() still ends its children.
        self._finalizer = weakref.finalize(self, self._serving.close)
        self.recycled = 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the live children (none once closed)."""
        return [child.process.pid for child in self._serving.children]

    def detect_many(self, images: Sequence[np.ndarray], confidence: float) -> list[Answer]:
        """The answer for each image, in order; every child takes the next image as soon as it is free."""
        with self._lock:
            children = self._children()
            answers: list[Answer | None] = [None] * len(images)
            waiting = deque(range(len(images)))
            working: dict[int, int] = {}  # child's slot -> the image it detects
            failed: set[int] = set()
            while waiting or working:
                for slot, child in enumerate(children):
                    if waiting and child.ready and slot not in working:
                        working[slot] = waiting.popleft()
                        try:
                            child.send(images[working[slot]], confidence)
                        except ChildGone as error:
                            index = working.pop(slot)
                            answers[index] = self._retried(slot, failed, error, images[index], confidence)
                # A child with nothing outstanding sends nothing: only the busy and the
                # starting ones are waited for. Each sends one message at a time, read whole.
                busy = [child for slot, child in enumerate(children) if slot in working or not child.ready]
                readable = select.select(busy, [], [])[0] if busy else []
                for child in readable:
                    slot = children.index(child)
                    try:
                        answer = child.receive()
                    except ChildGone as error:
                        lost = working.pop(slot) if slot in working else None
                        retried = self._retried(slot, failed, error, None if lost is None else images[lost],
                                                confidence)
                        if lost is not None:
                            answers[lost] = retried
                        continue
                    if answer is None:
                        continue
                    answers[working.pop(slot)] = answer
                    if child.growth() >= self._max_growth:
                        log.debug("yunet detector process grew %d bytes: replacing it", child.growth())
                        self._replace(slot)
                        self.recycled += 1
            done = [answer for answer in answers if answer is not None]
            assert len(done) == len(images), "every image is answered or the call raised"
            return done

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    def _children(self) -> list[_Child]:
        if not self._serving.children:
            raise ModelError("the yunet detector was closed")
        return self._serving.children

    def _retried(self, slot: int, failed: set[int], error: ChildGone, image: np.ndarray | None,
                 confidence: float) -> Answer | None:
        """A child failed: its replacement answers ``image`` (if any) at once; a second failure
        of the same slot within one call is a ``ModelError``."""
        if slot in failed:
            raise ModelError(f"yunet detector process failed twice: {error}")
        failed.add(slot)
        log.warning("yunet detector process failed (%s); starting a new one", error)
        child = self._replace(slot)
        if image is None:
            return None
        try:
            return child.call(image, confidence)
        except ChildGone as again:
            raise ModelError(f"yunet detector process failed twice: {again}") from again

    def _replace(self, slot: int) -> _Child:
        children = self._children()
        children[slot].close()
        children[slot] = _Child(self._threads)
        return children[slot]
