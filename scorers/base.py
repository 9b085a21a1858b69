"""The scorer interface: faces in their frames in, a quality in [0, 1] each out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from fiqa_stream.types import Face, Quality


@runtime_checkable
class Scorer(Protocol):
    """A face-image-quality scorer.

    ``score`` takes a batch of faces (each with its frame, box, confidence and
    landmarks) and returns one ``Quality`` per face: the fused score in [0, 1] and
    the named components it was fused from. ``model`` names the scorer and its
    version as it appears in events (for example ``"heuristic-1"``).
    """

    model: str

    def score(self, faces: Sequence[Face]) -> list[Quality]: ...

    def close(self) -> None: ...
