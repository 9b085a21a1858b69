"""Where best shots go. Each backend is one module; pick by ``sinks[].type``."""

from __future__ import annotations

from typing import Any

from fiqa_stream.registry import resolve
from fiqa_stream.sinks.base import Sink

SINKS = {
    "directory": "fiqa_stream.sinks.directory:DirectorySink",
    "redis": "fiqa_stream.sinks.redis_streams:RedisSink",
    "mqtt": "fiqa_stream.sinks.mqtt:MqttSink",
    "webhook": "fiqa_stream.sinks.webhook:WebhookSink",
}


def build_sink(config: Any) -> Sink:
    """Build the sink named by ``config.type`` from its config model."""
    sink: Sink = resolve("sink", config.type, SINKS)(config)
    return sink


__all__ = ["SINKS", "Sink", "build_sink"]
