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
import signal
import threading
from typing import Any

from fiqa_stream.config import Config, config_data, parse_config, reveal_secrets
from fiqa_stream.native_heap import bound_native_heap
from fiqa_stream.stream.parent_watch import ParentWatch, exit_orphaned
from fiqa_stream.stream.pipeline import Pipeline, RunSummary
from fiqa_stream.stream.sources import SourceSpec, expand_sources
from fiqa_stream.stream.threads import limit_threads, with_threads

log = logging.getLogger(__name__)


def shard_configs(config: Config, specs: list[SourceSpec], workers: int) -> list[Config]:
    """One config per non-empty shard, each naming its sources explicitly."""
    shards: list[list[SourceSpec]] = [specs[i::workers] for i in range(workers)]
    base = config_data(config)
    configs = []
    for index, shard in enumerate(s for s in shards if s):
        data: dict[str, Any] = {**base, "sources": [_explicit(spec) for spec in shard]}
        data["pipeline"] = {**base["pipeline"], "workers": 1, "progress": "off"}
        if base["metrics"]["enabled"] and base["metrics"]["port"]:
            data["metrics"] = {**base["metrics"], "port": base["metrics"]["port"] + index}
        data["sinks"] = [_sink_for_worker(sink, index) for sink in base["sinks"]]
        configs.append(parse_config(data, f"worker {index}"))
    return configs


def _explicit(spec: SourceSpec) -> dict[str, Any]:
    fields = reveal_secrets(spec.config) if spec.config else {}
    fields["id"] = spec.id
    if not spec.live:
        fields["url"] = str(spec.path)
    return fields


def _sink_for_worker(sink: dict[str, Any], index: int) -> dict[str, Any]:
    if not isinstance(sink.get("journal"), dict):
        return sink
    journal = dict(sink["journal"])
    path = str(journal["path"])
    stem, dot, suffix = path.rpartition(".")
    journal["path"] = f"{stem}-worker{index}.{suffix}" if dot and "/" not in suffix else f"{path}-worker{index}"
    return {**sink, "journal": journal}


# Beyond the pipeline's own shutdown deadline: time for the sinks' last writes and the exit.
_ORPHAN_GRACE_S = 5.0


def _worker(config_data: dict[str, Any], stop: ctypes.c_bool, results: Any, index: int, threads: int) -> None:
    bound_native_heap()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from fiqa_stream.logs import configure_logging

    configure_logging(config_data["logging"]["level"], config_data["logging"]["format"] == "json")
    local_stop = threading.Event()
    grace = float(config_data["pipeline"]["shutdown_timeout"]) + _ORPHAN_GRACE_S
    watch = ParentWatch(lambda: bool(stop.value), local_stop, grace).start()
    limit_threads(threads)
    try:
        config = parse_config(with_threads(config_data, threads), f"worker {index}")
        outcome = (index, Pipeline(config).run(local_stop), None)
    except Exception as error:  # noqa: BLE001 - reported by the parent
        outcome = (index, None, f"worker {index}: {error}")
    if watch.orphaned:
        exit_orphaned()
    results.put(outcome)


def run_sharded(config: Config, stop: threading.Event) -> RunSummary:
    """Run the config over ``config.pipeline.workers`` processes and merge their summaries."""
    specs, expansion_errors = expand_sources(config.sources)
    for error in expansion_errors:
        log.error("%s", error)
    configs = shard_configs(config, specs, config.pipeline.workers)
    context = multiprocessing.get_context("spawn")
    # A lock-free flag: a worker killed while holding an Event's lock would make set() hang.
    process_stop = context.RawValue(ctypes.c_bool, False)
    results = context.Queue()
    # Each worker's native thread pools get its share of the cores, not all of them each.
    threads = max(1, (os.cpu_count() or 1) // len(configs))
    processes = [
        context.Process(target=_worker, args=(config_data(c), process_stop, results, i, threads),
                        name=f"fiqa-worker-{i}")
        for i, c in enumerate(configs)
    ]
    for process in processes:
        process.start()
    log.info("%d sources over %d worker processes", len(specs), len(processes))
    summaries: list[RunSummary] = []
    failures = [str(e) for e in expansion_errors]
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
        sources=[s for summary in summaries for s in summary.sources],
        failures=failures + [f for summary in summaries for f in summary.failures],
        seconds=max((s.seconds for s in summaries), default=0.0),
        stage_seconds={},
        sink_failures=[f for summary in summaries for f in summary.sink_failures],
        interrupted=stop.is_set(),
    )
