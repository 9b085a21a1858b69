"""Where best shots go. Each backend is one module; pick by ``sinks[].type``."""

from __future__ import annotations

from fiqa_stream.registry import implementations, resolve
from fiqa_stream.sinks.base import Sink
from fiqa_stream.sinks.config import SinkConfig

#: ``sinks[].type`` → "module:Class", from the config models' ``implementation``.
SINKS = implementations(SinkConfig)


def build_sink(config: SinkConfig) -> Sink:
    """Build the sink named by ``config.type`` from its config model."""
    sink: Sink = resolve("sink", config.type, SINKS)(config)
    return sink


__all__ = ["SINKS", "Sink", "build_sink"]
