"""What every source is to the pipeline: a thread that decodes into a bounded buffer.

Files (``file_source.py``) and live streams (``live.py``) implement ``Source``;
``sources.open_source`` builds the right one from a ``SourceSpec``. A source puts
``Frame``s into its buffer and always ends with exactly one ``SourceEnd``; a live source
also puts a ``SourceOutage`` each time its stream drops, and a file decoding only some
stretches (``spans``) one where it skips to the next (its open tracks end there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fiqa_stream.errors import SourceError
from fiqa_stream.types import Frame


@dataclass(frozen=True, slots=True)
class SourceEnd:
    """End marker of one source; ``error`` is set when the source failed."""

    source: str
    error: SourceError | None = None


@dataclass(frozen=True, slots=True)
class SourceOutage:
    """A source's frames stop and later resume (a live stream was lost, a file skipped to
    its next span); the pipeline ends that source's open tracks. ``error`` says why."""

    source: str
    error: SourceError


Marker = SourceEnd | SourceOutage
SourceItem = Frame | Marker


class Source(Protocol):
    """One decoding thread, as the pipeline starts, watches and joins it."""

    @property
    def state(self) -> str:
        """What it does now: ``decoding`` or ``done`` (files); ``connecting``, ``streaming``,
        ``backoff``, ``stopped`` or ``failed`` (live)."""
        ...

    @property
    def decoded(self) -> int:
        """Frames decoded so far (analysed or not)."""
        ...

    @property
    def expected_frames(self) -> int | None:
        """Frames the container says it holds; None when unknown (and for live streams)."""
        ...

    @property
    def reconnects(self) -> int:
        """Successful reconnections after an outage (always 0 for files)."""
        ...

    @property
    def outages(self) -> int:
        """Times the stream was lost (always 0 for files)."""
        ...

    @property
    def down_since(self) -> float | None:
        """``time.monotonic()`` when the stream went down; None while it is up (always for files)."""
        ...

    def start(self) -> None:
        """Start decoding in a thread of its own."""
        ...

    def join(self, timeout: float | None = None) -> None:
        """Wait for the decoding thread, at most ``timeout`` seconds."""
        ...
