"""The sink interface: where best shots go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from fiqa_stream.types import BestShot


@runtime_checkable
class Sink(Protocol):
    """Receives best-shot events. ``publish`` may block; the pipeline calls it from a
    sink thread, never from the analysis loop. ``close`` flushes and releases."""

    name: str

    def publish(self, events: Sequence[BestShot]) -> None: ...

    def close(self) -> None: ...
