"""Sharding sources over worker processes (``pipeline.workers: N``).

Sources are expanded once in the parent and dealt round-robin to N processes; each
runs an ordinary pipeline on its share and returns its summary. Detector and scorer
are per process. Worker ``i`` serves its metrics on ``metrics.port + i`` and writes
each sink's spill journal beside the configured one with a ``-worker<i>`` suffix, so no
two processes share mutable state. Stop requests reach the workers through one shared
flag; the workers ignore SIGINT/SIGTERM themselves so a terminal's Ctrl-C (sent to the
whole process group) still drains through the parent. A worker whose parent dies (even
by SIGKILL) stops as after a stop request, flushing its open tracks, and exits within
``pipeline.shutdown_timeout`` plus a few seconds.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import threading
from typing import Any

from fiqa_stream.config import Config
from fiqa_stream.sinks.config import sink_for_worker
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.parent_watch import exit_orphaned
from fiqa_stream.stream.pipeline import Pipeline, RunSummary, unopened_stats
from fiqa_stream.stream.sources import SourceSpec, expand_sources
from fiqa_stream.stream.worker_bootstrap import start_worker

log = logging.getLogger(__name__)


def shard_configs(config: Config, specs: list[SourceSpec], workers: int) -> list[Config]:
    """One config per non-empty shard, each naming its sources explicitly."""
    shards = [shard for shard in (specs[i::workers] for i in range(workers)) if shard]
    return [_shard_config(config, shard, index) for index, shard in enumerate(shards)]


def _shard_config(config: Config, shard: list[SourceSpec], index: int) -> Config:
    metrics = config.metrics
    if metrics.enabled and metrics.port:
        metrics = metrics.model_copy(update={"port": metrics.port + index})
    return config.model_copy(update={
        "sources": [_explicit(spec) for spec in shard],
        "pipeline": config.pipeline.model_copy(update={"workers": 1, "progress": "off"}),
        "metrics": metrics,
        "sinks": [sink_for_worker(sink, index) for sink in config.sinks],
    })


def _explicit(spec: SourceSpec) -> SourceConfig:
    update: dict[str, object] = {"id": spec.id}
    if spec.path is not None:
        update["url"] = str(spec.path)
    return spec.config.model_copy(update=update)


# Beyond the pipeline's own shutdown deadline: time for the sinks' last writes and the exit.
_ORPHAN_GRACE_S = 5.0


def _worker(config: Config, stop: ctypes.c_bool, results: Any, index: int, threads: int) -> None:
    grace = config.pipeline.shutdown_timeout + _ORPHAN_GRACE_S
    local_stop, watch = start_worker(config.logging, threads, lambda: bool(stop.value), grace)
    outcome: tuple[int, RunSummary | None, str | None]
    try:
        outcome = (index, Pipeline(config, threads=threads).run(local_stop), None)
    except Exception as error:  # noqa: BLE001 - reported by the parent
        outcome = (index, None, f"worker {index}: {error}")
    if watch.orphaned:
        exit_orphaned()
    results.put(outcome)


def run_sharded(config: Config, stop: threading.Event) -> RunSummary:
    """Run the config over ``config.pipeline.workers`` processes and merge their summaries."""
    specs, unopened = expand_sources(config.sources)
    for source in unopened:
        log.error("%s", source.error)
    configs = shard_configs(config, specs, config.pipeline.workers)
    context = multiprocessing.get_context("spawn")
    # A lock-free flag: a worker killed while holding an Event's lock would make set() hang.
    process_stop = context.RawValue(ctypes.c_bool, False)
    results = context.Queue()
    # Each worker's native thread pools get its share of the cores, not all of them each.
    threads = max(1, (os.cpu_count() or 1) // len(configs))
    processes = [
        context.Process(target=_worker, args=(c, process_stop, results, i, threads),
                        name=f"fiqa-worker-{i}")
        for i, c in enumerate(configs)
    ]
    for process in processes:
        process.start()
    log.info("%d sources over %d worker processes", len(specs), len(processes))
    summaries: list[RunSummary] = []
    failures = [str(source.error) for source in unopened]
    pending = len(processes)
    while pending:
        if stop.is_set():
            process_stop.value = True
        try:
            index, summary, error = results.get(timeout=0.2)
        except Exception:  # noqa: BLE001 - queue.Empty from a multiprocessing queue
            if not any(p.is_alive() for p in processes) and results.empty():
                failures.append("a worker process died without a summary")
                log.error("%s", failures[-1])
                break
            continue
        pending -= 1
        if error:
            log.error("%s", error)
            failures.append(error)
        elif summary is not None:
            summaries.append(summary)
    for process in processes:
        process.join(10)
    return RunSummary(
        sources=[*map(unopened_stats, unopened), *(s for summary in summaries for s in summary.sources)],
        failures=failures + [f for summary in summaries for f in summary.failures],
        seconds=max((s.seconds for s in summaries), default=0.0),
        stage_seconds={},
        sink_failures=[f for summary in summaries for f in summary.sink_failures],
        interrupted=stop.is_set(),
    )
