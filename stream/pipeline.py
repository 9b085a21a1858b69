"""The pipeline runner: decode → detect → track → score → select → sinks.

One decode thread per source fills a bounded buffer; the analysis loop (the caller's
thread) gathers frames round-robin across sources into batches, detects faces in the
whole batch, tracks per source, scores every tracked face of the batch at once,
updates best shots and hands events to the sink threads. Stopping (``stop`` set by a
signal handler, or the end of every source) flushes every open track's final event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fiqa_stream.config import Config
from fiqa_stream.models import Models, build_models
from fiqa_stream.sinks import Sink, build_sink
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.dispatch import SinkDispatcher
from fiqa_stream.stream.fairness import SourceShare, fairness, overloaded
from fiqa_stream.stream.metrics import MetricsServer, PipelineMetrics, SourceSnapshot
from fiqa_stream.stream.motion import DetectionPlan, MotionGate, detect_planned, plan_wave
from fiqa_stream.stream.plausibility import not_nested, plausible, subset
from fiqa_stream.stream.selection import BestShotSelector, new_run_id
from fiqa_stream.stream.shot_boundary import ShotBoundaryDetector
from fiqa_stream.stream.source_base import Marker, SourceEnd, SourceItem, SourceOutage
from fiqa_stream.stream.sources import SourceSpec, UnopenedSource, expand_sources, open_source
from fiqa_stream.stream.tracker import ByteTracker
from fiqa_stream.types import BestShot, Detections, EventKind, Face, Frame

log = logging.getLogger(__name__)

STAGES = ("detect", "track", "score", "select")


@dataclass(slots=True)
class SourceStats:
    """What one source did in a run."""

    id: str
    path: str
    decoded: int = 0
    expected: int | None = None
    analysed: int = 0
    dropped: int = 0
    reconnects: int = 0
    outages: int = 0
    state: str = "starting"
    faces: int = 0
    tracks: int = 0
    best_shots: int = 0
    finished: bool = False
    error: str | None = None
    latency_p50: float | None = None
    latency_p99: float | None = None
    scene_cuts: int = 0
    #: Detected faces that yielded no best shot, by reason (stream/drops.py).
    drops: Counter[str] = field(default_factory=Counter)
    #: Width in pixels of the widest face dropped as too small.
    widest_small_face: float = 0.0
    #: Frames/s analysed, and offered (analysed + lost), over the last stream/fairness.WINDOW_S.
    analysed_fps: float = 0.0
    offered_fps: float = 0.0
    #: The configured ceiling (``sources[].fps``); None: every frame, or every Nth.
    ceiling_fps: float | None = None
    #: Motion gating (stream/motion.py): analysed frames not sent to the detector, frames
    #: detected on regions only, the regions detected, and frames detected whole.
    detection_skipped: int = 0
    detection_on_regions: int = 0
    regions_detected: int = 0
    detection_whole: int = 0


def unopened_stats(source: UnopenedSource) -> SourceStats:
    """The summary row of a source that named nothing to decode."""
    return SourceStats(source.id, source.where, state="failed", error=str(source.error))


@dataclass(slots=True)
class RunSummary:
    """The outcome of a run, for the closing summary and the exit code."""

    sources: list[SourceStats]
    failures: list[str]
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    sink_failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    #: Seconds the live sources lost more than stream/fairness.OVERLOAD_LOSS of their frames.
    overloaded_seconds: float = 0.0

    @property
    def frames_analysed(self) -> int:
        return sum(s.analysed for s in self.sources)

    @property
    def best_shots(self) -> int:
        return sum(s.best_shots for s in self.sources)

    @property
    def fps(self) -> float:
        return self.frames_analysed / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.sink_failures


class _SourceRun:
    """Per-source state of the analysis loop."""

    def __init__(self, spec: SourceSpec, config: Config, model: str, stop: threading.Event,
                 wakeup: threading.Condition) -> None:
        self.buffer: FrameBuffer[SourceItem] = FrameBuffer(
            spec.queue_size, "drop_oldest" if spec.live else "block", wakeup
        )
        self.decoder = open_source(spec, self.buffer, stop)
        self.tracker = ByteTracker(config.tracker)
        self.shots = ShotBoundaryDetector(config.tracker.scene_cut_threshold)
        gated = config.motion.enabled == "on" or (config.motion.enabled == "auto" and spec.live)
        self.gate = MotionGate(config.motion, config.detector, gated)
        keep_frames = any(getattr(sink, "full_frames", False) for sink in config.sinks)
        self.selector = BestShotSelector(
            spec.id, config.selection, config.crop, model, run_id=new_run_id(), keep_frames=keep_frames
        )
        self.stats = SourceStats(spec.id, spec.where, ceiling_fps=spec.config.fps if spec.live else None)
        self.live = spec.live
        self.share = SourceShare(time.monotonic())
        # Capture-to-analysed seconds of the most recent live frames (bounded).
        self.latencies: deque[float] = deque(maxlen=4096)

    def end_tracks(self) -> list[BestShot]:
        """Every open track ends now (end of input, outage or shutdown). Track ids keep
        counting, so event ids stay unique across outages."""
        events = [e for track_id in self.tracker.finish() for e in self.selector.end(track_id)]
        events.extend(self.selector.finish())
        return events

    def finish(self) -> list[BestShot]:
        self.stats.finished = True
        return self.end_tracks()

    def refresh_stats(self) -> None:
        decoder = self.decoder
        self.stats.decoded = decoder.decoded
        self.stats.expected = decoder.expected_frames
        self.stats.dropped = self.buffer.dropped
        if self.latencies:
            ordered = sorted(self.latencies)
            self.stats.latency_p50 = ordered[len(ordered) // 2]
            self.stats.latency_p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        self.stats.reconnects = decoder.reconnects
        self.stats.outages = decoder.outages
        self.stats.state = str(decoder.state)
        now = time.monotonic()
        self.share.observe(now, self.buffer.dropped)
        self.stats.analysed_fps = self.share.analysed_rate(now)
        self.stats.offered_fps = self.share.offered_rate(now)


ProgressCallback = Callable[[list[SourceStats]], None]


class Pipeline:
    """Runs one configuration to the end of its sources or until ``stop`` is set."""

    def __init__(
        self,
        config: Config,
        *,
        models: Models | None = None,
        threads: int = 0,
        sinks: list[Sink] | None = None,
        on_progress: ProgressCallback | None = None,
        progress_interval: float = 0.25,
    ) -> None:
        """Build what the config names; ``models`` and ``sinks`` handed in are used instead.

        Models handed in belong to the caller (shared across runs) and stay open; those
        built here (with ``threads`` native threads each, 0: their default) close with the run.
        """
        self._config = config
        self._owns_models = models is None
        if models is None:
            models = build_models(config.detector, config.scorer, config.device, threads)
        self._models = models
        self._detector = self._models.detector
        self._scorer = self._models.scorer
        self._sinks = sinks if sinks is not None else [build_sink(c) for c in config.sinks]
        self._on_progress = on_progress
        self._progress_interval = progress_interval
        self._stage_seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._overloaded = False
        self._overloaded_seconds = 0.0
        self._load_judged = time.monotonic()
        self.metrics = PipelineMetrics()
        self.metrics.watch_sinks(self._sinks)
        self.metrics_server: MetricsServer | None = None
        if config.metrics.enabled:
            settings = config.metrics
            try:
                self.metrics_server = MetricsServer(self.metrics, settings.address, settings.port, settings.down_after)
            except BaseException:
                # run() would have closed them; it never will.
                for sink in self._sinks:
                    sink.close()
                if self._owns_models:
                    self._models.close()
                raise

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        stop = stop or threading.Event()
        started = time.perf_counter()
        specs, unopened = expand_sources(self._config.sources)
        for source in unopened:
            log.error("%s", source.error)
        decoders_stop = threading.Event()
        wakeup = threading.Condition()
        runs = [_SourceRun(spec, self._config, self._scorer.model, decoders_stop, wakeup) for spec in specs]
        dispatchers = [SinkDispatcher(sink, self._config.pipeline.sink_queue) for sink in self._sinks]
        self.metrics.watch(lambda: self._snapshot(runs, dispatchers, unopened))
        self.metrics.add_sources(run.stats.id for run in runs)
        try:
            for run in runs:
                run.decoder.start()
            with ThreadPoolExecutor(1, thread_name_prefix="scene-cuts") as cuts:
                self._loop(runs, wakeup, stop, dispatchers, cuts)
        finally:
            # After a stop request everything below shares one deadline; at the natural
            # end of files the sinks get as long as they need.
            deadline = time.monotonic() + (self._config.pipeline.shutdown_timeout if stop.is_set() else 3600.0)
            decoders_stop.set()
            with wakeup:
                wakeup.notify_all()
            for run in runs:
                if not run.stats.finished:
                    # Flushed, but not finished: the summary tells a stopped source from a done one.
                    self._emit(run.end_tracks(), run, dispatchers)
            for run in runs:
                run.decoder.join(timeout=max(0.0, min(5.0, deadline - time.monotonic())))
            for dispatcher in dispatchers:
                dispatcher.close(timeout=max(0.1, deadline - time.monotonic()))
            if self._owns_models:
                self._models.close()
            if self.metrics_server is not None:
                self.metrics_server.close()
        for run in runs:
            run.refresh_stats()
        stats = [*map(unopened_stats, unopened), *(run.stats for run in runs)]
        failures = [s.error for s in stats if s.error]
        return RunSummary(
            sources=stats,
            failures=failures,
            seconds=time.perf_counter() - started,
            stage_seconds=dict(self._stage_seconds),
            sink_failures=[m for d in dispatchers for m in d.errors],
            interrupted=stop.is_set(),
            overloaded_seconds=self._overloaded_seconds,
        )

    def _loop(self, runs: list[_SourceRun], wakeup: threading.Condition, stop: threading.Event,
              dispatchers: list[SinkDispatcher], cuts: ThreadPoolExecutor) -> None:
        active = list(runs)
        last_progress = 0.0
        while active and not stop.is_set():
            frames, ended = self._gather(active, wakeup, stop)
            if frames:
                self._analyse(frames, dispatchers, cuts)
            for run, marker in ended:
                if isinstance(marker, SourceOutage):
                    self._emit(run.end_tracks(), run, dispatchers)
                    continue
                if marker.error is not None:
                    run.stats.error = str(marker.error)
                    log.error("%s", marker.error)
                self._emit(run.finish(), run, dispatchers)
                active.remove(run)
            now = time.perf_counter()
            if now - last_progress >= self._progress_interval or not active:
                last_progress = now
                for run in runs:
                    run.refresh_stats()
                self._judge_load(runs)
                if self._on_progress:
                    self._on_progress([run.stats for run in runs])

    def _gather(
        self, active: list[_SourceRun], wakeup: threading.Condition, stop: threading.Event
    ) -> tuple[list[tuple[_SourceRun, Frame]], list[tuple[_SourceRun, Marker]]]:
        """Up to ``batch_frames`` frames, a fair share of each source's, and the sources that ended.

        Sources take turns, one frame each per round, the least analysed over the recent window
        first (stream/fairness.py): when analysis cannot keep up, every camera degrades evenly.
        """
        limit = self._config.pipeline.batch_frames
        with wakeup:
            while not stop.is_set() and not any(len(run.buffer) for run in active):
                wakeup.wait(0.1)
            # Dynamic batching: give the other sources up to max_wait_ms to fill the batch.
            deadline = time.monotonic() + self._config.pipeline.max_wait_ms / 1000.0
            while not stop.is_set() and sum(len(run.buffer) for run in active) < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wakeup.wait(remaining)
        frames: list[tuple[_SourceRun, Frame]] = []
        ended: list[tuple[_SourceRun, Marker]] = []
        now = time.monotonic()
        for run in active:
            run.share.observe(now, run.buffer.dropped)
        open_runs = sorted(active, key=lambda run: run.share.priority())
        while open_runs and len(frames) < limit:
            for run in list(open_runs):
                item = run.buffer.get_nowait()
                if item is None:
                    open_runs.remove(run)
                elif isinstance(item, SourceEnd | SourceOutage):
                    # A marker closes this gather for its source: its frames so far are
                    # analysed before its tracks are ended.
                    ended.append((run, item))
                    open_runs.remove(run)
                else:
                    frames.append((run, item))
                    run.share.take(now)
                    if len(frames) >= limit:
                        break
        return frames, ended

    def _judge_load(self, runs: list[_SourceRun]) -> None:
        """Whether analysis keeps up with the live sources' ceilings, and how evenly they share it."""
        now = time.monotonic()
        live = [run.stats for run in runs if run.live and not run.stats.finished]
        analysed, offered = [s.analysed_fps for s in live], [s.offered_fps for s in live]
        was = self._overloaded
        self._overloaded = overloaded(sum(analysed), sum(offered), was)
        even = fairness(analysed, offered)
        if self._overloaded:
            self._overloaded_seconds += now - self._load_judged
        self._load_judged = now
        if self._overloaded and not was:
            log.warning("analysis cannot keep up with the live sources: %.1f of %.1f frames/s analysed; "
                        "every source gets an even share (fairness %.2f)", sum(analysed), sum(offered), even)
        elif was and not self._overloaded:
            log.info("analysis keeps up with the live sources again (%.1f frames/s)", sum(analysed))
        self.metrics.overloaded.set(1.0 if self._overloaded else 0.0)
        self.metrics.fairness.set(even)

    def _analyse(self, frames: list[tuple[_SourceRun, Frame]], dispatchers: list[SinkDispatcher],
                 cuts: ThreadPoolExecutor) -> None:
        """Analyse a batch in waves (``motion.plan_wave``): a gated source's frame after one
        detected whole waits until that frame's faces are tracked."""
        while frames:
            plans = plan_wave([(run.gate, frame, run.tracker.open_tracks) for run, frame in frames])
            self._analyse_wave(frames[: len(plans)], plans, dispatchers, cuts)
            frames = frames[len(plans) :]

    def _analyse_wave(self, frames: list[tuple[_SourceRun, Frame]], plans: list[DetectionPlan],
                      dispatchers: list[SinkDispatcher], cuts: ThreadPoolExecutor) -> None:
        clock = time.perf_counter()
        # Scene cuts depend on the pictures alone: they are found while the detector works.
        cut_found = cuts.submit(_scene_cuts, frames)
        for (run, _), plan in zip(frames, plans, strict=True):
            self._count_plan(run, plan)
        detections = detect_planned(self._detector, self._config.detector, [frame.image for _, frame in frames], plans)
        clock = self._lap("detect", clock)

        min_size = self._config.selection.min_face_size
        pending: list[tuple[_SourceRun, Frame, int, int]] = []
        faces: list[Face] = []
        ended: list[tuple[_SourceRun, list[int]]] = []
        for (run, frame), found, cut in zip(frames, detections, cut_found.result(), strict=True):
            run.stats.analysed += 1
            run.stats.faces += len(found)
            found = self._plausible(run, found)
            if cut:
                # Another shot: whoever is at a track's place now is not whom it followed.
                run.stats.scene_cuts += 1
                self.metrics.scene_cuts.labels(run.stats.id).inc()
                ended.append((run, run.tracker.finish()))
            step = run.tracker.update(found, frame.image)
            run.gate.follow(frame, found, step)
            ended.append((run, step.ended))
            self._drop(run, "low_confidence", len(found) - len(step.assigned))
            for assignment in step.assigned:
                box = found.boxes[assignment.detection]
                if box[2] - box[0] < min_size:
                    self._drop(run, "below_min_face_size")
                    run.stats.widest_small_face = max(run.stats.widest_small_face, float(box[2] - box[0]))
                    continue
                landmarks = None if found.landmarks is None else found.landmarks[assignment.detection]
                pending.append((run, frame, assignment.track_id, assignment.detection))
                faces.append(Face(frame.image, box, float(found.scores[assignment.detection]), landmarks))
        clock = self._lap("track", clock)

        qualities = self._scorer.score(faces) if faces else []
        clock = self._lap("score", clock)
        self.metrics.batch_frames.observe(len(frames))
        self.metrics.batch_faces.observe(len(faces))

        for (run, frame, track_id, _), face, quality in zip(pending, faces, qualities, strict=True):
            self._emit(run.selector.observe(track_id, frame, face.box, face.landmarks, quality), run, dispatchers)
        for run, track_ids in ended:
            for track_id in track_ids:
                self._emit(run.selector.end(track_id), run, dispatchers)
        self._lap("select", clock)
        self._observe_latency(frames)

    def _count_plan(self, run: _SourceRun, plan: DetectionPlan) -> None:
        stats, source = run.stats, run.stats.id
        if plan.whole:
            stats.detection_whole += 1
            self.metrics.detection_whole.labels(source).inc()
        elif plan.skipped:
            stats.detection_skipped += 1
            self.metrics.detection_skipped.labels(source).inc()
        else:
            stats.detection_on_regions += 1
            stats.regions_detected += len(plan.regions)
            self.metrics.detection_on_regions.labels(source).inc()
            self.metrics.regions_detected.labels(source).inc(len(plan.regions))

    def _plausible(self, run: _SourceRun, found: Detections) -> Detections:
        keep = plausible(found) & not_nested(found)
        if keep.all():
            return found
        self._drop(run, "implausible_box", int((~keep).sum()))
        return subset(found, keep)

    def _drop(self, run: _SourceRun, reason: str, count: int = 1) -> None:
        if count > 0:
            run.stats.drops[reason] += count
            self.metrics.faces_dropped.labels(run.stats.id, reason).inc(count)

    def _observe_latency(self, frames: list[tuple[_SourceRun, Frame]]) -> None:
        """Capture-to-analysed time of live frames: how far analysis lags the cameras."""
        now = datetime.now(UTC)
        for run, frame in frames:
            if frame.captured_at is not None:
                latency = (now - frame.captured_at).total_seconds()
                run.latencies.append(latency)
                self.metrics.frame_latency.labels(run.stats.id).observe(latency)

    def _emit(self, events: list[BestShot], run: _SourceRun, dispatchers: list[SinkDispatcher]) -> None:
        for reason, count in run.selector.dropped.items():
            self._drop(run, reason, count - run.stats.drops[reason])
        if not events:
            return
        run.stats.best_shots += sum(1 for e in events if e.kind is EventKind.FINAL)
        run.stats.tracks = run.selector.tracks_seen
        for event in events:
            self.metrics.best_shots.labels(event.source, event.kind.value).inc()
        for dispatcher in dispatchers:
            dispatcher.put(events)

    def _lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self._stage_seconds[stage] += now - since
        self.metrics.stage_seconds.labels(stage).observe(now - since)
        return now

    @staticmethod
    def _snapshot(
        runs: list[_SourceRun], dispatchers: list[SinkDispatcher], unopened: list[UnopenedSource]
    ) -> tuple[list[SourceSnapshot], dict[str, int]]:
        now = time.monotonic()
        sources = [SourceSnapshot(id=u.id, state="failed", decoded=0, analysed=0, dropped=0, reconnects=0, faces=0,
                                  queue_depth=0, down_for=None) for u in unopened]
        for run in runs:
            # Read live state from the decoder itself: while every camera is down the analysis
            # loop waits for frames and does not refresh the run's statistics.
            stats, decoder = run.stats, run.decoder
            down_since = decoder.down_since
            sources.append(SourceSnapshot(
                id=stats.id, state=str(decoder.state), decoded=decoder.decoded,
                analysed=stats.analysed, dropped=run.buffer.dropped,
                reconnects=decoder.reconnects, faces=stats.faces,
                queue_depth=len(run.buffer), down_for=None if down_since is None else now - down_since,
                analysed_fps=stats.analysed_fps, offered_fps=stats.offered_fps, ceiling_fps=stats.ceiling_fps,
            ))
        return sources, {d.sink.name: d.depth for d in dispatchers}


def _scene_cuts(frames: list[tuple[_SourceRun, Frame]]) -> list[bool]:
    """Whether each frame starts a new shot of its source; corrupt frames never do (nor
    become the picture the next frame is compared with)."""
    return [not frame.corrupt and run.shots.is_cut(frame.image) for run, frame in frames]
