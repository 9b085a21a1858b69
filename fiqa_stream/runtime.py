"""Where a detector or scorer runs: the resolved device, its onnxruntime providers and
the process's share of the cores. Every backend is built as ``Backend(config, runtime)``."""

from __future__ import annotations

from dataclasses import dataclass

from fiqa_stream.providers import Provider, onnx_providers


@dataclass(frozen=True, slots=True)
class Runtime:
    """The process-wide settings a backend runs under.

    Attributes:
        device: a resolved device, ``"cpu"`` or ``"cuda:N"`` (``fiqa_stream.device``).
        threads: native threads per model in this process; 0 leaves each library its
            default (one per core). A worker process sharing the machine gets its share.
    """

    device: str = "cpu"
    threads: int = 0

    def providers(self, part: str) -> list[Provider]:
        """onnxruntime's execution providers for ``part`` (``"scorer fiqa"``) on this device."""
        return onnx_providers(self.device, part)

    def threads_for(self, configured: int) -> int:
        """A model's thread count: its own ``threads`` setting when set, else this process's share."""
        return configured or self.threads


#: The CPU with each library's default threads: what a backend built without a runtime runs under.
CPU = Runtime()
