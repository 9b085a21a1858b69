"""Prometheus metrics and a health endpoint for a running pipeline.

Counters of frames, drops and reconnects are read from the pipeline's own per-source
statistics at scrape time (nothing is counted twice); latencies are histograms the
pipeline observes. Sinks with a spill journal (``ReplayingSink``, given to
``watch_sinks``) add their journal depth, events held in memory, replay restarts and
the events they refused for good (``rejected``, where the sink counts them).
``/healthz`` answers 503 when a live source has been down longer than ``down_after``
seconds or a sink's replay is failing, else 200, with a JSON body listing the sources
and those sinks.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol, runtime_checkable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fiqa_stream.errors import ConfigError

log = logging.getLogger(__name__)

STATES = ("starting", "connecting", "streaming", "backoff", "decoding", "done", "stopped", "failed")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """What a scrape needs of one source, taken from the pipeline's statistics."""

    id: str
    state: str
    decoded: int
    analysed: int
    dropped: int
    reconnects: int
    faces: int
    queue_depth: int
    down_for: float | None
    #: Frames/s analysed and offered (analysed + lost) over the fairness window; the ceiling.
    analysed_fps: float = 0.0
    offered_fps: float = 0.0
    ceiling_fps: float | None = None


Snapshot = Callable[[], tuple[list[SourceSnapshot], dict[str, int]]]


@runtime_checkable
class ReplayingSink(Protocol):
    """A sink that spills to a journal and replays it from a thread of its own."""

    name: str

    @property
    def journal_depth(self) -> int: ...

    @property
    def unspilled(self) -> int: ...

    @property
    def replay_restarts(self) -> int: ...

    @property
    def replay_problem(self) -> str | None: ...


class _SinkCollector(Collector):
    def __init__(self, sinks: Callable[[], list[ReplayingSink]]) -> None:
        self._sinks = sinks

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        restarts = CounterMetricFamily(
            "fiqa_sink_replay_restarts", "Times a sink's replay thread failed and was restarted.", labels=["sink"],
        )
        healthy = GaugeMetricFamily("fiqa_sink_replay_healthy", "1 while a sink's replay works.", labels=["sink"])
        journal = GaugeMetricFamily("fiqa_sink_journal_depth", "Events waiting in a sink's journal.", labels=["sink"])
        memory = GaugeMetricFamily(
            "fiqa_sink_unspilled", "Events held in memory because the journal could not store them.", labels=["sink"],
        )
        rejected = CounterMetricFamily(
            "fiqa_sink_rejected", "Events a sink gave up on for good (refused, not retried).", labels=["sink"],
        )
        for sink in self._sinks():
            restarts.add_metric([sink.name], sink.replay_restarts)
            healthy.add_metric([sink.name], 1.0 if sink.replay_problem is None else 0.0)
            journal.add_metric([sink.name], sink.journal_depth)
            memory.add_metric([sink.name], sink.unspilled)
            rejected.add_metric([sink.name], getattr(sink, "rejected", 0))
        yield from (restarts, healthy, journal, memory, rejected)


class _SourceCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        sources, sink_depths = self._snapshot()
        counters = {
            "decoded": CounterMetricFamily("fiqa_frames_decoded", "Frames decoded.", labels=["source"]),
            "analysed": CounterMetricFamily("fiqa_frames_analysed", "Frames analysed.", labels=["source"]),
            "dropped": CounterMetricFamily(
                "fiqa_frames_dropped", "Frames dropped because analysis lagged (live sources).", labels=["source"]
            ),
            "reconnects": CounterMetricFamily("fiqa_reconnects", "Reconnection attempts.", labels=["source"]),
            "faces": CounterMetricFamily("fiqa_faces_detected", "Faces detected.", labels=["source"]),
        }
        state = GaugeMetricFamily("fiqa_source_state", "1 for the source's current state.", labels=["source", "state"])
        up = GaugeMetricFamily("fiqa_source_up", "1 when the source delivers frames.", labels=["source"])
        depth = GaugeMetricFamily("fiqa_source_queue_depth", "Decoded frames waiting.", labels=["source"])
        analysed_fps = GaugeMetricFamily(
            "fiqa_source_analysed_fps", "Frames/s analysed over the last few seconds.", labels=["source"],
        )
        offered_fps = GaugeMetricFamily(
            "fiqa_source_offered_fps",
            "Frames/s the source handed to analysis over the last few seconds (analysed + dropped).",
            labels=["source"],
        )
        ceiling_fps = GaugeMetricFamily(
            "fiqa_source_ceiling_fps", "Configured most analysed frames/s (sources[].fps) of a live source.",
            labels=["source"],
        )
        for source in sources:
            for name, family in counters.items():
                family.add_metric([source.id], getattr(source, name))
            for name in STATES:
                state.add_metric([source.id, name], 1.0 if source.state == name else 0.0)
            up.add_metric([source.id], 0.0 if source.down_for is not None else 1.0)
            depth.add_metric([source.id], source.queue_depth)
            analysed_fps.add_metric([source.id], source.analysed_fps)
            offered_fps.add_metric([source.id], source.offered_fps)
            if source.ceiling_fps is not None:
                ceiling_fps.add_metric([source.id], source.ceiling_fps)
        sinks = GaugeMetricFamily("fiqa_sink_queue_depth", "Event batches waiting for a sink.", labels=["sink"])
        for sink, value in sink_depths.items():
            sinks.add_metric([sink], value)
        yield from counters.values()
        yield from (state, up, depth, sinks, analysed_fps, offered_fps, ceiling_fps)


class PipelineMetrics:
    """The metrics of one pipeline, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram(
            "fiqa_stage_seconds", "Time per batch in each analysis stage.", ["stage"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.frame_latency = Histogram(
            "fiqa_frame_latency_seconds", "From capture to analysed (live sources).", ["source"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.batch_frames = Histogram(
            "fiqa_batch_frames", "Frames per analysed batch (batch occupancy).",
            buckets=BATCH_BUCKETS, registry=self.registry,
        )
        self.batch_faces = Histogram(
            "fiqa_batch_faces", "Faces scored per analysed batch.", buckets=BATCH_BUCKETS, registry=self.registry,
        )
        self.best_shots = Counter("fiqa_best_shots", "Best-shot events emitted.", ["source", "kind"],
                                  registry=self.registry)
        self.scene_cuts = Counter(
            "fiqa_scene_cuts", "Scene cuts that ended every open track of a source.", ["source"],
            registry=self.registry,
        )
        self.faces_dropped = Counter(
            "fiqa_faces_dropped", "Detected faces that could not yield a best shot, by reason (docs/EVENTS.md).",
            ["source", "reason"], registry=self.registry,
        )
        self.detection_whole = Counter(
            "fiqa_detection_whole_frames", "Analysed frames the detector saw whole.", ["source"],
            registry=self.registry,
        )
        self.detection_skipped = Counter(
            "fiqa_detection_skipped_frames",
            "Analysed frames not sent to the detector: no motion and no tracked face (motion gating).",
            ["source"], registry=self.registry,
        )
        self.detection_on_regions = Counter(
            "fiqa_detection_region_frames",
            "Analysed frames the detector saw only moving regions and tracked faces of (motion gating).",
            ["source"], registry=self.registry,
        )
        self.regions_detected = Counter(
            "fiqa_detection_regions", "Frame regions cropped and detected (motion gating).", ["source"],
            registry=self.registry,
        )
        self.overloaded = Gauge(
            "fiqa_pipeline_overloaded",
            "1 while analysis cannot keep up with the live sources (they lose over 10 % of the frames their "
            "ceilings let through); each then gets an even share.", registry=self.registry,
        )
        self.fairness = Gauge(
            "fiqa_pipeline_fairness",
            "How evenly the live sources share analysis: the worst one's analysed rate over its max-min fair "
            "share (1: even; under overload with equal ceilings, min over mean analysed rate).",
            registry=self.registry,
        )
        self.fairness.set(1.0)
        self._snapshot: Snapshot = lambda: ([], {})
        self._sinks: list[ReplayingSink] = []
        self.registry.register(_SourceCollector(lambda: self._snapshot()))
        self.registry.register(_SinkCollector(lambda: self._sinks))

    def watch(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def add_sources(self, sources: Iterable[str]) -> None:
        """Serve each source's motion-gating counters from the start, at 0, so that a dashboard
        shows a source that has not skipped a frame yet as 0 rather than as no data."""
        for source in sources:
            for counter in (self.detection_skipped, self.detection_on_regions, self.detection_whole,
                            self.regions_detected):
                counter.labels(source)

    def watch_sinks(self, sinks: Iterable[object]) -> None:
        """Report the replay state of those ``sinks`` that keep a journal."""
        self._sinks = [sink for sink in sinks if isinstance(sink, ReplayingSink)]

    def health(self, down_after: float) -> tuple[bool, dict[str, object]]:
        sources, _ = self._snapshot()
        down = {s.id: round(s.down_for, 1) for s in sources if s.down_for is not None and s.down_for > down_after}
        failing = [sink for sink in self._sinks if sink.replay_problem is not None]
        body: dict[str, object] = {
            "status": "unhealthy" if down or failing else "ok",
            "down_after_seconds": down_after,
            "sources": {s.id: {"state": s.state, "down_for": None if s.down_for is None else round(s.down_for, 1)}
                        for s in sources},
            "sinks": {sink.name: {"replay": sink.replay_problem or "ok", "replay_restarts": sink.replay_restarts,
                                  "journal_depth": sink.journal_depth, "unspilled": sink.unspilled}
                      for sink in self._sinks},
        }
        return not (down or failing), body


def _listen_error(address: str, port: int, error: OSError) -> ConfigError:
    if error.errno == errno.EADDRINUSE:
        return ConfigError(
            f"metrics.port: {address}:{port} is already in use; choose another port (0: any free port)"
        )
    key = "metrics.port" if error.errno == errno.EACCES else "metrics.address"
    return ConfigError(f"{key}: cannot listen on {address}:{port}: {error.strerror or error}")


class MetricsServer:
    """Serves ``/metrics`` (Prometheus text format) and ``/healthz`` from a thread."""

    def __init__(self, metrics: PipelineMetrics, address: str, port: int, down_after: float) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path.split("?")[0] == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
                elif self.path.split("?")[0] == "/healthz":
                    healthy, body = metrics.health(down_after)
                    self._reply(200 if healthy else 503, "application/json", json.dumps(body).encode())
                else:
                    self._reply(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server API
                log.debug("metrics: " + format, *args)

        try:
            self._server = ThreadingHTTPServer((address, port), Handler)
        except OSError as error:
            raise _listen_error(address, port, error) from error
        self._server.daemon_threads = True
        self.address = f"{address}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s/metrics, health on http://%s/healthz", self.address, self.address)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
